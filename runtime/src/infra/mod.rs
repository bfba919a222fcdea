//! Infrastructure a run provides to its tests: started by the first test
//! that needs it, shared by the run, torn down at the end (also on panic
//! and on Ctrl-C). Each service implements [`Service`]; [`Infrastructure`]
//! holds them by type.
//!
//! The kit every service is built from:
//!
//! - `source`: the forced source, the URL -> Docker -> local choice and its
//!   "tried ...; do X" message;
//! - `docker`: the engine (DOCKER_HOST, contexts, rootless, Podman) and one
//!   container handle, for the run's servers and a test's own;
//! - `dirs`: where servers keep their files (tmpfs when it has room), the
//!   cache, making and copying directories a signal may interrupt;
//! - `process`: children tied to the run, terminate with a grace, pause
//!   trees, the account to run as, free ports and unique names;
//! - `reaper`: sweeps of dead runs' directories and containers, exit hooks;
//! - `hosted`: one instance of a service for every process of a nextest
//!   run (a keeper process, its lock files), for Redis and users' services
//!   marked `#[verily::service]`; PostgreSQL's keeper uses its parts;
//! - `proxy`: a TCP proxy a test can cut, black-hole and slow down.
//!
//! The services: `postgres` (server/, databases/, migrations, sql, the
//! nextest keeper in shared.rs, test_server/ for `PgServer`) and `redis`.

pub mod dirs;
#[cfg(feature = "docker")]
pub(crate) mod docker;
pub mod hosted;
pub mod postgres;
pub(crate) mod process;
pub mod proxy;
pub mod reaper;
#[cfg(feature = "redis")]
pub mod redis;
pub mod source;

use std::any::{Any, TypeId};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tokio::sync::OnceCell;

use crate::config::Config;

pub use crate::errors::InfraError;

/// `VERILY_KEEP=1`: keep servers and the databases of failed tests.
pub fn keep_requested() -> bool {
    crate::env::env().keep
}

/// A service a run provides to its tests (PostgreSQL, Redis): started by
/// the first test that needs it, once per run, and torn down at the end.
///
/// Adding a service is one module that implements this trait, plus its
/// fixtures; [`Infrastructure::service`] starts it and
/// [`Infrastructure::shutdown`] stops it, with no other change to the runner.
///
/// # Shared by the processes of a nextest run
///
/// nextest runs each test in a process of its own, so by default each
/// process starts its own instance. Put `#[verily::service]` on the impl
/// and implement [`endpoint`](Service::endpoint) and
/// [`attach`](Service::attach), and one instance serves every process of
/// the run instead: the first process that needs it starts a keeper (the
/// test binary re-executed) that starts the service and publishes its
/// endpoint; the others attach to it, and the keeper stops it once the run
/// is over (also when it was interrupted). Outside nextest
/// (`VERILY_SHARED=1` forces sharing, `0` turns it off) `start` is called
/// in the run's own process, as for any service.
///
/// ```ignore
/// #[verily::service]
/// impl verily::Service for FileServer {
///     const NAME: &'static str = "file-server";
///     async fn start(_: &verily::Config) -> Result<Self, verily::InfraError> { /* spawn it */ }
///     async fn shutdown(&self, _keep: bool) { /* stop it */ }
///     fn endpoint(&self) -> String { self.url.clone() }
///     async fn attach(endpoint: &str, _: &verily::Config) -> Result<Self, verily::InfraError> {
///         Ok(FileServer::at(endpoint))
///     }
/// }
/// ```
pub trait Service: Send + Sync + Sized + 'static {
    /// Prefix of the service's lines on stderr (`redis: ...`).
    const NAME: &'static str;

    /// Starts (or connects to) the service and says in one line on stderr
    /// where it came from. An error fails every test that needs it.
    fn start(config: &Config) -> impl Future<Output = Result<Self, InfraError>> + Send;

    /// Stops what `start` made and removes what the run left on it; with
    /// `keep` (`VERILY_KEEP=1`), says how to reach it instead.
    fn shutdown(&self, keep: bool) -> impl Future<Output = ()> + Send;

    /// What another process of the run needs to reach this instance (a
    /// URL, an address): the keeper of a shared service publishes it.
    /// Called only for services marked `#[verily::service]`.
    fn endpoint(&self) -> String {
        String::new()
    }

    /// A handle on the instance another process started and published
    /// with [`endpoint`](Service::endpoint). Its `shutdown` is never called
    /// (the keeper stops the instance); [`detach`](Service::detach) is.
    fn attach(
        endpoint: &str,
        config: &Config,
    ) -> impl Future<Output = Result<Self, InfraError>> + Send {
        let _ = (endpoint, config);
        async {
            Err(InfraError::new(format!(
                "{} is marked #[verily::service] but does not implement Service::attach",
                Self::NAME
            )))
        }
    }

    /// Gives back what this process took from an instance it attached to,
    /// at the end of its run. Nothing by default.
    fn detach(&self) -> impl Future<Output = ()> + Send {
        async {}
    }
}

/// A service this process uses: its own, or an instance another process
/// keeps (`hosted`).
struct Held<S> {
    service: Arc<S>,
    attached: Option<hosted::Attached>,
}

/// One service's slot: empty until the first test asks for it, then the
/// started service or the reason it could not start, for every later test.
type Slot<S> = OnceCell<Result<Held<S>, InfraError>>;

/// A slot with its type erased, so the run can stop every started service.
trait StartedService: Send + Sync {
    fn shutdown(&self, keep: bool) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
    fn as_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync>;
}

impl<S: Service> StartedService for Slot<S> {
    fn shutdown(&self, keep: bool) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async move {
            // A service still starting (a signal came while PostgreSQL
            // migrated its template) is waited for, then stopped: its start
            // runs on, on the run's runtime, and would otherwise leave what
            // it makes after the teardown. One never asked for is marked so.
            let held = self
                .get_or_init(|| async {
                    Err(InfraError::new(format!(
                        "{}: the run is shutting down",
                        S::NAME
                    )))
                })
                .await;
            match Some(held) {
                Some(Ok(Held {
                    service,
                    attached: Some(_),
                })) => service.detach().await,
                Some(Ok(Held {
                    service,
                    attached: None,
                })) => service.shutdown(keep).await,
                _ => {}
            }
        })
    }

    fn as_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync> {
        self
    }
}

/// The run's infrastructure: each service started lazily, by type.
pub struct Infrastructure {
    config: Config,
    /// The run's own runtime, which outlives every test: services start
    /// and lend on it, so that nothing they keep is tied to the runtime of
    /// the test that first asked (each test has its own, as under
    /// `#[tokio::test]`).
    runtime: Option<tokio::runtime::Handle>,
    /// Slots in the order services were first asked for.
    services: std::sync::Mutex<Vec<(TypeId, Arc<dyn StartedService>)>>,
}

impl fmt::Debug for Infrastructure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let services = self.services.lock().map(|s| s.len()).unwrap_or_default();
        f.debug_struct("Infrastructure")
            .field("services", &services)
            .finish_non_exhaustive()
    }
}

impl Infrastructure {
    pub fn new(config: Config) -> Self {
        Self {
            config,
            runtime: tokio::runtime::Handle::try_current().ok(),
            services: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// Runs `work` on the run's runtime (see `runtime`), or where it is
    /// when there is none: what a service does for a test (start, lend a
    /// database, take it back) must not leave connections on the test's
    /// runtime, which ends with the test.
    pub(crate) async fn on_run_runtime<F>(&self, work: F) -> F::Output
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        match &self.runtime {
            Some(runtime) => match runtime.spawn(work).await {
                Ok(output) => output,
                Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
                Err(error) => panic!("the run's runtime dropped a service's work: {error}"),
            },
            None => work.await,
        }
    }

    /// The run's configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Service `S` for this run, started on the first call; every later
    /// call gets the same instance, or the same error.
    pub async fn service<S: Service>(&self) -> Result<Arc<S>, InfraError> {
        let slot = self.slot::<S>();
        let held = slot
            .get_or_init(|| async {
                let started = if hosted::requested() && hosted::is_hosted::<S>() {
                    hosted::attach::<S>(&self.config)
                        .await
                        .map(|(service, attached)| Held {
                            service: Arc::new(service),
                            attached: Some(attached),
                        })
                } else {
                    S::start(&self.config).await.map(|service| Held {
                        service: Arc::new(service),
                        attached: None,
                    })
                };
                if let Err(error) = &started {
                    eprintln!("{}: {error}", S::NAME);
                }
                started
            })
            .await;
        match held {
            Ok(held) => Ok(Arc::clone(&held.service)),
            Err(error) => Err(error.clone()),
        }
    }

    fn slot<S: Service>(&self) -> Arc<Slot<S>> {
        let mut services = self.services.lock().unwrap_or_else(|e| e.into_inner());
        let erased = match services.iter().find(|(id, _)| *id == TypeId::of::<S>()) {
            Some((_, slot)) => Arc::clone(slot),
            None => {
                let slot: Arc<dyn StartedService> = Arc::new(Slot::<S>::new());
                services.push((TypeId::of::<S>(), Arc::clone(&slot)));
                slot
            }
        };
        erased
            .as_any()
            .downcast::<Slot<S>>()
            .expect("slots are keyed by their service's type")
    }

    /// PostgreSQL for this run, started (and migrated) on first call.
    pub async fn postgres(&self) -> Result<Arc<postgres::Postgres>, InfraError> {
        self.service::<postgres::Postgres>().await
    }

    /// Tears every started service down, all at once; with
    /// `VERILY_KEEP=1`, says how to reach what was kept instead.
    pub async fn shutdown(&self) {
        let slots: Vec<Arc<dyn StartedService>> = self
            .services
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(_, slot)| Arc::clone(slot))
            .collect();
        let keep = keep_requested();
        let mut stopping = tokio::task::JoinSet::new();
        for slot in slots {
            stopping.spawn(async move { slot.shutdown(keep).await });
        }
        while stopping.join_next().await.is_some() {}
        // A signal during PostgreSQL's start: the template it was making.
        postgres::databases::template::abandon_preparation().await;
    }
}

/// The run's infrastructure as the context of a test sees it.
pub type SharedInfrastructure = Arc<Infrastructure>;
