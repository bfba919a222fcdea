//! What it means for a dependency to be wired, and the report that
//! `#[wired]` tests build while they walk a service's fields. It lives in
//! the facade, not the runtime: production code implements `Wire`, and
//! production builds must need nothing from the runtime.
//!
//! A field counts as wired through [`Wire`]: implemented here for `Option`,
//! `Weak`, `OnceLock`, `OnceCell`, and for `Arc`, `Box` and `Rc` of those.
//! A type whose own fields are declared with `#[wired(...)]` on the struct
//! implements [`DeclaredWiring`], and the check descends into it.

use std::borrow::Cow;
use std::cell::OnceCell;
use std::fmt;
use std::ops::Deref;
use std::rc::Rc;
use std::sync::{Arc, OnceLock};

/// Why a dependency is not wired, in a word or two (`None`, `OnceLock not set`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unwired {
    reason: Cow<'static, str>,
}

impl Unwired {
    /// A reason that reads well in "repository not wired (REASON)".
    pub fn new(reason: impl Into<Cow<'static, str>>) -> Self {
        Self {
            reason: reason.into(),
        }
    }

    /// The reason given at construction.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl fmt::Display for Unwired {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

/// A slot that holds a dependency once it is injected.
///
/// Implement it for your own holder types; `#[wired]` then accepts fields of
/// that type. `visit` calls `f` with the dependency when it is present and
/// otherwise says why it is not.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be checked by #[wired]",
    label = "verily cannot tell whether this dependency is wired",
    note = "implement `verily::Wire` for `{Self}`, or hold the dependency in `Option`, `Weak`, `OnceLock` or `OnceCell` (optionally inside `Arc`, `Box` or `Rc`)"
)]
pub trait Wire {
    /// The dependency itself.
    type Target: ?Sized;

    /// Calls `f` with the dependency if it is wired.
    fn visit(&self, f: &mut dyn FnMut(&Self::Target)) -> Result<(), Unwired>;
}

impl<T> Wire for Option<T> {
    type Target = T;

    fn visit(&self, f: &mut dyn FnMut(&T)) -> Result<(), Unwired> {
        match self {
            Some(value) => {
                f(value);
                Ok(())
            }
            None => Err(Unwired::new("None")),
        }
    }
}

macro_rules! wire_through_weak {
    ($($weak:ty),*) => {$(
        impl<T: ?Sized> Wire for $weak {
            type Target = T;

            fn visit(&self, f: &mut dyn FnMut(&T)) -> Result<(), Unwired> {
                let strong = self
                    .upgrade()
                    .ok_or_else(|| Unwired::new("Weak points to nothing"))?;
                f(&strong);
                Ok(())
            }
        }
    )*};
}

wire_through_weak!(std::sync::Weak<T>, std::rc::Weak<T>);

macro_rules! wire_through_once {
    ($($cell:ident),*) => {$(
        impl<T> Wire for $cell<T> {
            type Target = T;

            fn visit(&self, f: &mut dyn FnMut(&T)) -> Result<(), Unwired> {
                let value = self
                    .get()
                    .ok_or_else(|| Unwired::new(concat!(stringify!($cell), " not set")))?;
                f(value);
                Ok(())
            }
        }
    )*};
}

wire_through_once!(OnceLock, OnceCell);

macro_rules! wire_through_pointer {
    ($($pointer:ident),*) => {$(
        impl<W: Wire + ?Sized> Wire for $pointer<W> {
            type Target = W::Target;

            fn visit(&self, f: &mut dyn FnMut(&Self::Target)) -> Result<(), Unwired> {
                (**self).visit(f)
            }
        }
    )*};
}

wire_through_pointer!(Arc, Box, Rc);

/// A type whose required dependencies were declared with `#[wired(...)]` on
/// the struct. Generated; do not implement by hand.
#[diagnostic::on_unimplemented(
    message = "`{Self}` does not declare its wired fields",
    label = "#[wired] without a field list needs the returned type to declare its fields",
    note = "name the fields here, as in #[verily::wired(repository, metrics)], or declare them once on the struct: #[verily::wired(repository, metrics)] struct ..."
)]
pub trait DeclaredWiring {
    /// Checks every declared field, recording each under `prefix`.
    fn check_declared(&self, report: &mut WiringReport, prefix: &str);
}

/// How deep the check follows nested declarations before it assumes a cycle
/// (a service that holds a `Weak` back to its parent, say).
const MAX_DEPTH: usize = 16;

#[derive(Debug)]
struct Entry {
    path: String,
    outcome: Result<(), Unwired>,
}

/// Every field a `#[wired]` test looked at, wired or not, in the order seen.
#[derive(Debug, Default)]
pub struct WiringReport {
    entries: Vec<Entry>,
    depth: usize,
}

impl WiringReport {
    /// An empty report.
    pub fn new() -> Self {
        Self::default()
    }

    /// Checks one field at `prefix` + `name`, then calls `then` with the
    /// dependency when it is wired, to check what lies behind it.
    pub fn field<W: Wire + ?Sized>(
        &mut self,
        prefix: &str,
        name: &str,
        field: &W,
        then: impl FnOnce(&mut WiringReport, &str, &W::Target),
    ) {
        let path = if prefix.is_empty() {
            name.to_owned()
        } else {
            format!("{prefix}.{name}")
        };
        let index = self.entries.len();
        self.entries.push(Entry {
            path: path.clone(),
            outcome: Ok(()),
        });
        let mut then = Some(then);
        let outcome = field.visit(&mut |target| {
            if let Some(then) = then.take() {
                then(self, &path, target);
            }
        });
        self.entries[index].outcome = outcome;
    }

    /// Descends into a declared type, unless the nesting is deep enough to be
    /// a cycle.
    pub fn nested<T: DeclaredWiring + ?Sized>(&mut self, prefix: &str, value: &T) {
        if self.depth >= MAX_DEPTH {
            return;
        }
        self.depth += 1;
        value.check_declared(self, prefix);
        self.depth -= 1;
    }

    /// Paths of the fields found wired.
    pub fn wired(&self) -> impl Iterator<Item = &str> {
        self.entries
            .iter()
            .filter(|entry| entry.outcome.is_ok())
            .map(|entry| entry.path.as_str())
    }

    /// Paths of the fields found unwired, with the reason.
    pub fn unwired(&self) -> impl Iterator<Item = (&str, &Unwired)> {
        self.entries
            .iter()
            .filter_map(|entry| match &entry.outcome {
                Ok(()) => None,
                Err(why) => Some((entry.path.as_str(), why)),
            })
    }

    /// `Ok` when every field is wired; otherwise the message a failing test
    /// shows: `get_operations_service() returned OperationsService with
    /// repository not wired (None); wired: metrics`.
    pub fn verdict(&self, factory: &str, type_name: &str) -> Result<(), String> {
        let unwired: Vec<String> = self
            .unwired()
            .map(|(path, why)| format!("{path} not wired ({why})"))
            .collect();
        if unwired.is_empty() {
            return Ok(());
        }
        let wired: Vec<&str> = self.wired().collect();
        let wired = if wired.is_empty() {
            "nothing".to_owned()
        } else {
            wired.join(", ")
        };
        Err(format!(
            "{factory} returned {type_name} with {}; wired: {wired}",
            unwired.join(", ")
        ))
    }
}

/// Wraps a dependency so generated code can ask, by autoref specialization,
/// whether it (or what it points to) declares wiring of its own.
/// Not public API. Used by generated code.
#[doc(hidden)]
#[derive(Debug)]
pub struct Probe<'a, T: ?Sized>(pub &'a T);

/// The dependency declares its own wired fields.
#[doc(hidden)]
pub trait NestedDirect {
    fn verily_nested(&self, report: &mut WiringReport, prefix: &str);
}

impl<T: DeclaredWiring + ?Sized> NestedDirect for &&&Probe<'_, T> {
    fn verily_nested(&self, report: &mut WiringReport, prefix: &str) {
        report.nested(prefix, self.0);
    }
}

/// The dependency points (`Arc<T>`, `Box<T>`) to a type that declares them.
#[doc(hidden)]
pub trait NestedDeref {
    fn verily_nested(&self, report: &mut WiringReport, prefix: &str);
}

impl<T> NestedDeref for &&Probe<'_, T>
where
    T: Deref + ?Sized,
    T::Target: DeclaredWiring,
{
    fn verily_nested(&self, report: &mut WiringReport, prefix: &str) {
        report.nested(prefix, &**self.0);
    }
}

/// Two pointers deep (`Arc<Box<T>>`).
#[doc(hidden)]
pub trait NestedDerefTwice {
    fn verily_nested(&self, report: &mut WiringReport, prefix: &str);
}

impl<T> NestedDerefTwice for &Probe<'_, T>
where
    T: Deref + ?Sized,
    T::Target: Deref,
    <T::Target as Deref>::Target: DeclaredWiring,
{
    fn verily_nested(&self, report: &mut WiringReport, prefix: &str) {
        report.nested(prefix, &***self.0);
    }
}

/// Nothing behind the dependency to check.
#[doc(hidden)]
pub trait NestedNone {
    fn verily_nested(&self, report: &mut WiringReport, prefix: &str);
}

impl<T: ?Sized> NestedNone for Probe<'_, T> {
    fn verily_nested(&self, _report: &mut WiringReport, _prefix: &str) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Repository;

    struct Service {
        repository: Option<Arc<Repository>>,
        cache: OnceLock<String>,
    }

    impl DeclaredWiring for Service {
        fn check_declared(&self, report: &mut WiringReport, prefix: &str) {
            report.field(prefix, "repository", &self.repository, |_, _, _| {});
            report.field(prefix, "cache", &self.cache, |_, _, _| {});
        }
    }

    struct Detector {
        service: Option<Arc<Service>>,
    }

    fn check_detector(detector: &Detector) -> Result<(), String> {
        let mut report = WiringReport::new();
        report.field("", "service", &detector.service, |report, path, target| {
            (&&&Probe(target)).verily_nested(report, path);
        });
        report.verdict("detector()", "Detector")
    }

    #[test]
    fn every_holder_reports_its_state() {
        let mut report = WiringReport::new();
        let some = Some(1);
        let none: Option<i32> = None;
        let dangling: std::sync::Weak<i32> = std::sync::Weak::new();
        let unset: OnceLock<i32> = OnceLock::new();
        let boxed: Box<Option<i32>> = Box::new(Some(2));
        report.field("", "some", &some, |_, _, _| {});
        report.field("", "none", &none, |_, _, _| {});
        report.field("", "dangling", &dangling, |_, _, _| {});
        report.field("", "unset", &unset, |_, _, _| {});
        report.field("", "boxed", &boxed, |_, _, _| {});
        assert_eq!(report.wired().collect::<Vec<_>>(), ["some", "boxed"]);
        let unwired: Vec<_> = report
            .unwired()
            .map(|(path, why)| format!("{path}: {why}"))
            .collect();
        assert_eq!(
            unwired,
            [
                "none: None",
                "dangling: Weak points to nothing",
                "unset: OnceLock not set"
            ]
        );
    }

    #[test]
    fn nested_declarations_are_followed_with_their_full_path() {
        let detector = Detector {
            service: Some(Arc::new(Service {
                repository: None,
                cache: OnceLock::from("warm".to_owned()),
            })),
        };
        assert_eq!(
            check_detector(&detector).unwrap_err(),
            "detector() returned Detector with service.repository not wired (None); wired: service, service.cache"
        );
    }

    #[test]
    fn fully_wired_passes() {
        let detector = Detector {
            service: Some(Arc::new(Service {
                repository: Some(Arc::new(Repository)),
                cache: OnceLock::from("warm".to_owned()),
            })),
        };
        assert_eq!(check_detector(&detector), Ok(()));
    }
}
