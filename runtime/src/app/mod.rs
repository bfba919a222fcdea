//! The app under test: the service's own binary, started per test with the
//! test's own database in its environment, waited for until ready, talked
//! to over HTTP, its output captured and checked, and stopped (with
//! everything it started) however the test ends.
//!
//! [`App`] is the fixture (the binary `Config::app_binary` names, or the
//! harness crate's own); [`AppConfig`] starts any command, several per test.

pub mod http;
mod logs;
mod process;
mod ready;

use std::ffi::OsString;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use http::{HttpError, Response};
pub use ready::Ready;

use crate::fixtures::{Fixture, FixtureError, TestContext};
use crate::infra::keep_requested;
use crate::model::{Failure, TestResult};
use logs::{Logs, TAIL_LINES};
use process::{Running, wait_exit};

/// How long an app may take to become ready, unless configured.
pub const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `terminate` waits after SIGTERM before it kills, unless configured.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(5);
/// How long the verdict waits for the app's output to be read to its end
/// once the app is stopped (a process outside its group may hold a pipe).
const DRAIN_LIMIT: Duration = Duration::from_secs(2);

/// How to start an app: the command, what its environment carries, when
/// it counts as ready. Build one with [`App::command`] (or take the [`App`]
/// fixture for the configured binary) and [`start`](Self::start) it.
#[derive(Debug, Clone)]
pub struct AppConfig {
    name: String,
    program: PathBuf,
    args: Vec<OsString>,
    env: Vec<(String, String)>,
    database_var: Option<String>,
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    redis_var: Option<String>,
    port_var: Option<String>,
    ready: Ready,
    ready_timeout: Duration,
    grace: Duration,
}

impl AppConfig {
    fn new(program: PathBuf) -> Self {
        let name = program
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_else(|| "app".to_owned());
        Self {
            name,
            program,
            args: Vec::new(),
            env: Vec::new(),
            database_var: Some("DATABASE_URL".to_owned()),
            redis_var: None,
            port_var: Some("PORT".to_owned()),
            ready: Ready::Http("/health".to_owned()),
            ready_timeout: DEFAULT_READY_TIMEOUT,
            grace: DEFAULT_GRACE,
        }
    }

    /// The name in messages (default: the program's file name).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// One more command-line argument.
    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// One more environment variable (the harness's own are inherited).
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// The variable that carries the test's database URL (default
    /// `DATABASE_URL`; `APP__DATABASE__URL` for config-crate layouts).
    pub fn database_env(mut self, var: impl Into<String>) -> Self {
        self.database_var = Some(var.into());
        self
    }

    /// No database: the app gets no URL and the test none of its own.
    pub fn no_database(mut self) -> Self {
        self.database_var = None;
        self
    }

    /// The variable that carries the URL of the test's own Redis database
    /// (none by default).
    #[cfg(feature = "redis")]
    pub fn redis_env(mut self, var: impl Into<String>) -> Self {
        self.redis_var = Some(var.into());
        self
    }

    /// The variable that carries the free port the app must listen on
    /// (default `PORT`).
    pub fn port_env(mut self, var: impl Into<String>) -> Self {
        self.port_var = Some(var.into());
        self
    }

    /// When the app counts as ready (default: `GET /health` answers 2xx).
    pub fn ready_when(mut self, ready: Ready) -> Self {
        self.ready = ready;
        self
    }

    /// How long it may take to become ready (default 10 s).
    pub fn ready_timeout(mut self, limit: Duration) -> Self {
        self.ready_timeout = limit;
        self
    }

    /// How long `terminate` waits after SIGTERM (default 5 s).
    pub fn grace(mut self, limit: Duration) -> Self {
        self.grace = limit;
        self
    }

    /// Starts the app for this test and waits until it is ready. It is
    /// stopped when the test ends, and its logged errors checked.
    pub async fn start(self, ctx: &mut TestContext) -> Result<App, FixtureError> {
        let mut env = self.env.clone();
        if let Some(var) = &self.database_var {
            env.push((var.clone(), ctx.database().await?.url().to_owned()));
        }
        #[cfg(feature = "redis")]
        if let Some(var) = &self.redis_var {
            let redis = ctx.fixture::<crate::fixtures::Redis>().await?;
            env.push((var.clone(), redis.url().to_owned()));
        }
        let port = free_port().map_err(|error| {
            FixtureError::new(format!("no free port for {}: {error}", self.name))
        })?;
        if let Some(var) = &self.port_var {
            env.push((var.clone(), port.to_string()));
        }
        let file_path = keep_requested().then(|| log_path(&self.name));
        let app = App {
            inner: Arc::new(Inner {
                address: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
                logs: Arc::new(Logs::new(file_path)),
                running: Mutex::new(None),
                expected_errors: Mutex::new(Vec::new()),
                ready_in: Mutex::new(None),
                env,
                config: self,
            }),
        };
        let amended = app.clone();
        ctx.amend_verdict(move |result| amended.amend(result));
        let stopped = app.clone();
        ctx.at_end(move |keep| async move { stopped.finish(keep) });
        app.launch()
            .await
            .map_err(|error| FixtureError::new(error.0))?;
        Ok(app)
    }
}

/// A running app of the test: the service's own process.
///
/// Cheap to clone; every clone is the same process. When the test ends it
/// is killed with every process in its group; the test fails if the app
/// logged a panic or an ERROR line it did not [expect](Self::expect_log_error).
#[derive(Clone)]
pub struct App {
    inner: Arc<Inner>,
}

struct Inner {
    config: AppConfig,
    env: Vec<(String, String)>,
    address: SocketAddr,
    logs: Arc<Logs>,
    running: Mutex<Option<Running>>,
    expected_errors: Mutex<Vec<String>>,
    ready_in: Mutex<Option<Duration>>,
}

impl Drop for Inner {
    // The last handle gone (a test stopped at its timeout drops its
    // context without giving back): nothing of the app may outlive it.
    fn drop(&mut self) {
        if let Some(running) = self
            .running
            .get_mut()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
        {
            running.kill_now();
        }
    }
}

/// Something the app did not do: become ready, exit, answer.
#[derive(Clone, PartialEq, Eq)]
pub struct AppError(String);

impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

// Shown as the message when a test returns or unwraps it.
impl fmt::Debug for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for AppError {}

impl From<HttpError> for AppError {
    fn from(error: HttpError) -> Self {
        AppError(error.0)
    }
}

impl fmt::Debug for App {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("App")
            .field("name", &self.inner.config.name)
            .field("url", &self.url())
            .field("pid", &self.pid())
            .finish()
    }
}

impl App {
    /// An app started from `program` (a path, or a name on `PATH`).
    pub fn command(program: impl Into<PathBuf>) -> AppConfig {
        AppConfig::new(program.into())
    }

    /// The name in messages.
    pub fn name(&self) -> &str {
        &self.inner.config.name
    }

    /// `http://127.0.0.1:<port>`, for any HTTP client.
    pub fn url(&self) -> String {
        format!("http://{}", self.inner.address)
    }

    /// The port the app was told to listen on.
    pub fn port(&self) -> u16 {
        self.inner.address.port()
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        let mut running = self.running();
        let running = running.as_mut()?;
        running.try_exit().is_none().then(|| running.pid())
    }

    /// How long the last start took, from spawn to ready.
    pub fn ready_in(&self) -> Option<Duration> {
        *self
            .inner
            .ready_in
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The exit status, if the process has exited.
    pub fn exit_status(&self) -> Option<ExitStatus> {
        self.running().as_mut().and_then(Running::try_exit)
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> Result<Response, HttpError> {
        http::request(self.inner.address, "GET", path, None).await
    }

    /// `POST path` with `body` as JSON.
    pub async fn post_json<B: serde::Serialize + ?Sized>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<Response, HttpError> {
        let bytes = serde_json::to_vec(body)
            .map_err(|error| HttpError(format!("the body is not JSON: {error}")))?;
        self.request("POST", path, Some(("application/json", &bytes)))
            .await
    }

    /// `DELETE path`.
    pub async fn delete(&self, path: &str) -> Result<Response, HttpError> {
        http::request(self.inner.address, "DELETE", path, None).await
    }

    /// Any request, with an optional body and its content type.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<(&str, &[u8])>,
    ) -> Result<Response, HttpError> {
        http::request(self.inner.address, method, path, body).await
    }

    /// The app's output so far (stdout and stderr, by line; the last
    /// few thousand lines).
    pub fn logs(&self) -> Vec<String> {
        self.inner.logs.lines()
    }

    /// Waits until a line of output (earlier ones included) contains
    /// `pattern`, and returns it.
    pub async fn wait_for_log(&self, pattern: &str, limit: Duration) -> Result<String, AppError> {
        let mut lines = self.inner.logs.subscribe();
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if let Some(line) = self.inner.logs.find_since(0, pattern) {
                return Ok(line);
            }
            if tokio::time::timeout_at(deadline, lines.changed())
                .await
                .is_err()
            {
                return Err(AppError(format!(
                    "{} logged no line containing `{pattern}` within {}\n{}",
                    self.name(),
                    seconds(limit),
                    self.tail_section()
                )));
            }
        }
    }

    /// Declares an error line the test expects (any line containing
    /// `pattern`), so it does not fail the test.
    pub fn expect_log_error(&self, pattern: impl Into<String>) {
        self.inner
            .expected_errors
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(pattern.into());
    }

    /// Sends SIGTERM and waits up to the grace period for the app to exit
    /// (then kills it); returns how it exited.
    pub async fn terminate(&self) -> Result<ExitStatus, AppError> {
        self.signal(libc::SIGTERM)?;
        if let Some(status) = wait_exit(&self.inner.running, self.inner.config.grace).await {
            self.kill_group();
            return Ok(status);
        }
        let status = self.kill_running();
        self.read_to_end().await;
        Err(AppError(format!(
            "{} did not exit within {} of SIGTERM; killed ({})\n{}",
            self.name(),
            seconds(self.inner.config.grace),
            status.map_or_else(|| "no status".to_owned(), |status| status.to_string()),
            self.tail_section()
        )))
    }

    /// Kills the app (SIGKILL, with its group) and returns how it exited.
    pub fn kill(&self) -> Option<ExitStatus> {
        self.kill_running()
    }

    /// Sends `signal` to the app's process.
    pub fn signal(&self, signal: libc::c_int) -> Result<(), AppError> {
        match self.running().as_mut() {
            Some(running) => {
                running.signal(signal);
                Ok(())
            }
            None => Err(AppError(format!("{} is not running", self.name()))),
        }
    }

    /// Stops the app (SIGTERM, then SIGKILL after the grace period) and
    /// starts it again with the same environment, database and port.
    pub async fn restart(&self) -> Result<(), AppError> {
        if self.pid().is_some() {
            let _ = self.terminate().await;
        }
        self.inner
            .logs
            .push(&format!("--- verily: {} restarted ---", self.name()));
        self.launch().await
    }

    /// Starts the process and waits until it is ready.
    async fn launch(&self) -> Result<(), AppError> {
        let config = &self.inner.config;
        let mut command = Command::new(&config.program);
        command
            .args(&config.args)
            .envs(self.inner.env.iter().cloned());
        // A restarted app is ready by the lines of its new run only.
        let since = self.inner.logs.total();
        let started = Instant::now();
        let running = Running::spawn(command, &self.inner.logs).map_err(|error| {
            AppError(format!(
                "cannot start {} ({}): {error}; build it first, or name the binary with Config::app_binary(env!(\"CARGO_BIN_EXE_<name>\"))",
                config.name,
                config.program.display()
            ))
        })?;
        *self.running() = Some(running);
        let mut lines = self.inner.logs.subscribe();
        loop {
            if let Some(status) = self.exit_status() {
                // Its last words may still be in a pipe: the message quotes them.
                self.kill_group();
                self.read_to_end().await;
                return Err(AppError(format!(
                    "{} exited ({status}) before it was ready (waited for {})\n{}",
                    config.name,
                    config.ready,
                    self.tail_section()
                )));
            }
            let seen = match config
                .ready
                .probe(self.inner.address, &self.inner.logs, since)
                .await
            {
                Ok(()) => break,
                Err(seen) => seen,
            };
            if started.elapsed() > config.ready_timeout {
                self.kill_running();
                self.read_to_end().await;
                return Err(AppError(format!(
                    "{} was not ready within {}: waited for {} ({seen})\n{}",
                    config.name,
                    seconds(config.ready_timeout),
                    config.ready,
                    self.tail_section()
                )));
            }
            config.ready.pause(&mut lines).await;
        }
        let ready_in = started.elapsed();
        *self
            .inner
            .ready_in
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(ready_in);
        if crate::env::env().app_timings {
            eprintln!(
                "app: {} ready in {:.1} ms ({})",
                config.name,
                ready_in.as_secs_f64() * 1000.0,
                config.ready
            );
        }
        Ok(())
    }

    fn running(&self) -> std::sync::MutexGuard<'_, Option<Running>> {
        self.inner
            .running
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn kill_running(&self) -> Option<ExitStatus> {
        self.running().as_mut().and_then(Running::kill_now)
    }

    fn kill_group(&self) {
        if let Some(running) = self.running().as_ref() {
            running.kill_group();
        }
    }

    /// The last lines of output and where the full log is, for messages.
    fn tail_section(&self) -> String {
        let pid = self
            .running()
            .as_ref()
            .map_or_else(String::new, |running| format!(", pid {}", running.pid()));
        let kept = match &self.inner.logs.file_path {
            Some(path) => format!("full log: {}", path.display()),
            None => "VERILY_KEEP=1 keeps the full log".to_owned(),
        };
        format!(
            "--- last lines of {}{pid} ({kept}) ---\n{}",
            self.name(),
            self.inner.logs.tail(TAIL_LINES)
        )
    }

    /// Once the app is gone, waits (on the blocking pool) until its output
    /// is read to the end, so a message quotes its last lines.
    async fn read_to_end(&self) {
        let logs = Arc::clone(&self.inner.logs);
        let _ = tokio::task::spawn_blocking(move || logs.wait_until_read(DRAIN_LIMIT)).await;
    }

    /// Stops the app and reads what it wrote to the end, so a line logged
    /// just before the test ended is judged too (each stream has its own
    /// reader, which may lag behind the one that saw the test's last line).
    fn stop_and_drain(&self) {
        self.kill_running();
        if !self.inner.logs.wait_until_read(DRAIN_LIMIT) {
            eprintln!(
                "warning: the output of {} was still open {} after it was killed (a process outside its group holds it); judged on what was read",
                self.name(),
                seconds(DRAIN_LIMIT)
            );
        }
    }

    /// A passing test fails on an unexpected error line; a failing one
    /// gets the app's last lines in its message. The test is over: the app
    /// is stopped first and its output read to the end.
    fn amend(&self, result: &mut TestResult) {
        self.stop_and_drain();
        match result {
            Ok(()) => {
                let expected = self
                    .inner
                    .expected_errors
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .clone();
                let unexpected = self.inner.logs.unexpected_errors(&expected);
                if let Some(first) = unexpected.first() {
                    *result = Err(Failure::new(format!(
                        "{} logged an error the test did not expect: {first}{}\n(if the test expects it: app.expect_log_error(\"...\"))\n{}",
                        self.name(),
                        match unexpected.len() {
                            1 => String::new(),
                            more => format!(" (and {} more)", more - 1),
                        },
                        self.tail_section()
                    )));
                }
            }
            // Once per app: an `AppError` the test unwrapped carries it already.
            Err(failure)
                if !failure
                    .message
                    .contains(&format!("--- last lines of {}", self.name())) =>
            {
                failure.message = format!("{}\n{}", failure.message, self.tail_section());
            }
            Err(_) => {}
        }
    }

    /// At the end of the test: the app and its group are killed; its log
    /// file removed, or kept (and named) for a failed test with `VERILY_KEEP=1`.
    fn finish(&self, keep: bool) {
        self.kill_running();
        if let Some(path) = &self.inner.logs.file_path {
            if keep {
                eprintln!("app: kept the log of {}: {}", self.name(), path.display());
            } else {
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

impl Fixture for App {
    const CATEGORY: Option<&'static str> = Some("e2e");

    async fn setup(ctx: &mut TestContext) -> Result<Self, FixtureError> {
        let program = default_binary(ctx.config())?;
        App::command(program).start(ctx).await
    }
}

/// The binary the `App` fixture starts: `Config::app_binary`, else the
/// harness crate's own binary (its package name) next to the harness.
fn default_binary(config: &crate::config::Config) -> Result<PathBuf, FixtureError> {
    if let Some(binary) = &config.app_binary {
        return Ok(binary.clone());
    }
    let harness = std::env::current_exe()
        .map_err(|error| FixtureError::new(format!("cannot find the harness binary: {error}")))?;
    // target/<profile>/deps/harness-<hash> -> target/<profile>/<package>
    let profile_dir = harness
        .parent()
        .and_then(Path::parent)
        .unwrap_or(Path::new("."));
    let package = config.package.as_deref().unwrap_or("app");
    let candidate = profile_dir.join(package);
    if candidate.is_file() {
        return Ok(candidate);
    }
    Err(FixtureError::new(format!(
        "no app binary to start: {} does not exist; name it in main!: \
         `verily::main!(my_crate; config = verily::Config::new().app_binary(env!(\"CARGO_BIN_EXE_<bin name>\")))`",
        candidate.display()
    )))
}

/// A port nothing listens on now, for the app to take.
fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

/// Where a kept log goes: the temp dir, named by the run and the app.
fn log_path(name: &str) -> PathBuf {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("verily-app-{}-{n}-{name}.log", std::process::id()))
}

fn seconds(duration: Duration) -> String {
    format!("{} s", duration.as_secs_f64())
}
