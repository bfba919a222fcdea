//! One local PostgreSQL shared by every process of a nextest run.
//!
//! nextest runs each test in a process of its own; a cluster, a migrated
//! template and a database per process would cost more than the test.
//! Instead:
//!
//! - The first process that needs PostgreSQL starts a *keeper*: the same
//!   test binary, re-executed in a session of its own with
//!   `VERILY_SHARED_KEEPER` set, so it outlives that process and the
//!   signals sent to its group. The keeper starts the cluster (which dies
//!   with it), writes where it listens, and stops it and removes everything
//!   once no process has used it for `VERILY_SHARED_IDLE_MS` (3 s by
//!   default): after the run, also when the run was interrupted.
//! - Each process holds a shared lock on `shared-<key>.clients` while it
//!   runs; the keeper is idle when it can take that lock exclusively.
//!   Starting and stopping happen under `shared-<key>.start`, taken after
//!   the clients lock, so a process never attaches to a cluster the keeper
//!   is stopping.
//! - The template is named after a hash of the migrations and made once,
//!   under an advisory lock; the baseline of its state (see `reset.rs`) is
//!   kept in the template's comment for the processes that come later.
//! - Test databases are reused across processes: a process takes one whose
//!   comment says `clean` and whose advisory lock it can get (held until
//!   it exits), and after its test resets and verifies it and marks it
//!   `clean` again. A database a process left any other way is never
//!   handed out again; all of them go with the cluster.

use std::fs::{self, File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{Connection, PgPool};
use tokio::sync::Mutex;

use super::local::{self, Binaries, LocalCluster};
use super::reset::Baseline;
use super::template::{self, Schema, TestDatabase, quote};
use crate::config::Config;
use crate::hash::stable_hash;
use crate::infra::InfraError;
use crate::infra::process;

/// Set in the keeper's environment: the key of the cluster it keeps.
const KEEPER: &str = "VERILY_SHARED_KEEPER";

/// How long the cluster outlives its last user, unless
/// `VERILY_SHARED_IDLE_MS` says otherwise.
const IDLE: Duration = Duration::from_secs(3);

/// Whether this process should use the shared cluster: under nextest, or
/// with `VERILY_SHARED=1`; `VERILY_SHARED=0` turns it off.
pub fn requested() -> bool {
    match std::env::var("VERILY_SHARED").as_deref() {
        Ok("1" | "true") => true,
        Ok("0" | "false") => false,
        _ => std::env::var_os("NEXTEST").is_some() || std::env::var_os("NEXTEST_RUN_ID").is_some(),
    }
}

/// In the keeper process (the harness re-executed), keeps the cluster and
/// never returns; elsewhere returns at once.
pub fn keep_if_keeper() {
    let Some(key) = std::env::var_os(KEEPER) else {
        return;
    };
    let key = key.to_string_lossy().into_owned();
    let code = match keep(&key) {
        Ok(()) => 0,
        Err(error) => {
            eprintln!("verily keeper: {error}");
            1
        }
    };
    std::process::exit(code);
}

/// The files of one shared cluster, next to the ephemeral clusters.
struct Files {
    clients: PathBuf,
    start: PathBuf,
    /// `<keeper pid>\n<socket dir>\n<binaries dir>\n<version>\n`, written
    /// once the server is ready.
    address: PathBuf,
    log: PathBuf,
}

impl Files {
    fn new(key: &str) -> Result<Self, InfraError> {
        let root = local::runtime_root(local::server_account()?)?;
        Ok(Self::in_root(&root, key))
    }

    fn in_root(root: &Path, key: &str) -> Self {
        let file = |suffix: &str| root.join(format!("shared-{key}.{suffix}"));
        Self {
            clients: file("clients"),
            start: file("start"),
            address: file("address"),
            log: file("log"),
        }
    }

    /// Where the keeper's server listens, if that keeper is alive.
    fn address(&self) -> Option<Address> {
        let text = fs::read_to_string(&self.address).ok()?;
        let mut lines = text.lines();
        let keeper: u32 = lines.next()?.parse().ok()?;
        let socket_dir = PathBuf::from(lines.next()?);
        let binaries = Binaries {
            dir: PathBuf::from(lines.next()?),
            version: lines.next()?.to_owned(),
        };
        process::is_alive(keeper).then_some(Address {
            keeper,
            socket_dir,
            binaries,
        })
    }
}

/// A running shared cluster, as its keeper published it.
struct Address {
    keeper: u32,
    socket_dir: PathBuf,
    binaries: Binaries,
}

/// A key per set of binaries: processes of different PostgreSQL versions
/// do not share.
fn key(binaries: &Binaries) -> String {
    format!("{:016x}", stable_hash(&binaries.dir.to_string_lossy()))
}

/// This process's use of the shared cluster: it stays up while any exists.
#[derive(Debug)]
pub struct SharedCluster {
    socket_dir: PathBuf,
    binaries: Binaries,
    keeper: u32,
    /// Holds the shared lock on the clients file.
    _using: File,
}

impl SharedCluster {
    /// Attaches to a shared cluster that is running already, if there is
    /// one: without looking for binaries or asking Docker, so the processes
    /// after the first start in milliseconds.
    pub fn attach_running() -> Result<Option<Self>, InfraError> {
        let root = local::runtime_root(local::server_account()?)?;
        let Ok(entries) = fs::read_dir(&root) else {
            return Ok(None);
        };
        for entry in entries.filter_map(Result::ok) {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(key) = name
                .strip_prefix("shared-")
                .and_then(|rest| rest.strip_suffix(".address"))
            else {
                continue;
            };
            let files = Files::in_root(&root, key);
            if files.address().is_some()
                && let Some(cluster) = Self::attach_with(&files, None)?
            {
                return Ok(Some(cluster));
            }
        }
        Ok(None)
    }

    /// Attaches to the shared cluster of these binaries, starting a keeper
    /// if there is none.
    pub fn attach(binaries: Binaries) -> Result<Self, InfraError> {
        let key = key(&binaries);
        let files = Files::new(&key)?;
        Ok(Self::attach_with(&files, Some(&key))?.expect("started when missing"))
    }

    /// With `start_as`, starts a keeper when none runs; without, returns
    /// `None` then.
    fn attach_with(files: &Files, start_as: Option<&str>) -> Result<Option<Self>, InfraError> {
        let using = open_lock(&files.clients)?;
        lock(&using, libc::LOCK_SH, &files.clients)?;
        let start = open_lock(&files.start)?;
        lock(&start, libc::LOCK_EX, &files.start)?;
        let address = match (files.address(), start_as) {
            (Some(address), _) => address,
            (None, Some(key)) => start_keeper(key, files)?,
            (None, None) => return Ok(None),
        };
        drop(start);
        Ok(Some(Self {
            socket_dir: address.socket_dir,
            binaries: address.binaries,
            keeper: address.keeper,
            _using: using,
        }))
    }

    pub fn options(&self, database: &str) -> PgConnectOptions {
        PgConnectOptions::new()
            .socket(&self.socket_dir)
            .username(local::SUPERUSER)
            .database(database)
    }

    pub fn url_pattern(&self) -> String {
        format!(
            "postgres://{}@localhost/{{database}}?host={}",
            local::SUPERUSER,
            self.socket_dir.display()
        )
    }

    pub fn describe(&self) -> String {
        format!(
            "shared local cluster (PostgreSQL {}, {}, kept by process {} for this run's processes)",
            self.binaries.version,
            self.binaries.dir.display(),
            self.keeper
        )
    }
}

/// Starts a keeper and waits until its server is ready.
fn start_keeper(key: &str, files: &Files) -> Result<Address, InfraError> {
    let _ = fs::remove_file(&files.address);
    let exe = std::env::current_exe()
        .map_err(|error| InfraError::new(format!("cannot find the harness binary: {error}")))?;
    let log = File::create(&files.log).map_err(|error| {
        InfraError::new(format!("cannot create {}: {error}", files.log.display()))
    })?;
    let mut command = Command::new(exe);
    command
        .env(KEEPER, key)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log);
    // SAFETY: setsid is async-signal-safe; the keeper leaves the test's
    // process group and session, so nothing aimed at the test reaches it.
    unsafe {
        command.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let mut keeper = command
        .spawn()
        .map_err(|error| InfraError::new(format!("cannot start the keeper: {error}")))?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(address) = files.address() {
            // Reaped by init once this process is gone; nothing waits for it.
            std::mem::forget(keeper);
            return Ok(address);
        }
        if let Ok(Some(status)) = keeper.try_wait() {
            let log = fs::read_to_string(&files.log).unwrap_or_default();
            return Err(InfraError::new(format!(
                "the shared cluster's keeper exited ({status}): {}",
                log.trim()
            )));
        }
        if Instant::now() > deadline {
            let _ = keeper.kill();
            return Err(InfraError::new(
                "the shared cluster was not ready after 60 s",
            ));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The keeper: starts the cluster, publishes its address, and stops it
/// once no process has used it for the idle time.
fn keep(key: &str) -> Result<(), InfraError> {
    let binaries = local::find_binaries()
        .filter(|binaries| self::key(binaries) == key)
        .ok_or_else(|| InfraError::new("the binaries the keeper was started for are gone"))?;
    let files = Files::new(key)?;
    let idle = std::env::var("VERILY_SHARED_IDLE_MS")
        .ok()
        .and_then(|ms| ms.parse().ok())
        .map_or(IDLE, Duration::from_millis);
    // Started on this (main) thread: the server dies with the thread that
    // started it, which is this process's only one.
    let cluster = LocalCluster::start(binaries)?;
    let address = format!(
        "{}\n{}\n{}\n{}\n",
        std::process::id(),
        cluster.socket_dir().display(),
        cluster.binaries.dir.display(),
        cluster.binaries.version
    );
    let staged = files.address.with_extension("staged");
    fs::write(&staged, address)
        .and_then(|()| fs::rename(&staged, &files.address))
        .map_err(|error| {
            InfraError::new(format!("cannot write {}: {error}", files.address.display()))
        })?;
    let clients = open_lock(&files.clients)?;
    let start = open_lock(&files.start)?;
    let mut idle_since: Option<Instant> = None;
    loop {
        std::thread::sleep(Duration::from_millis(100));
        if !try_lock(&clients, libc::LOCK_EX) {
            idle_since = None;
            continue;
        }
        let since = *idle_since.get_or_insert_with(Instant::now);
        if since.elapsed() < idle {
            unlock(&clients);
            continue;
        }
        // Idle long enough. Under the start lock no process is attaching;
        // holding the clients lock exclusively, none is attached.
        unlock(&clients);
        lock(&start, libc::LOCK_EX, &files.start)?;
        if try_lock(&clients, libc::LOCK_EX) {
            let _ = fs::remove_file(&files.address);
            drop(cluster);
            let _ = fs::remove_file(&files.log);
            return Ok(());
        }
        unlock(&start);
        idle_since = None;
    }
}

fn open_lock(path: &Path) -> Result<File, InfraError> {
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(path)
        .map_err(|error| InfraError::new(format!("cannot open {}: {error}", path.display())))
}

fn lock(file: &File, operation: libc::c_int, path: &Path) -> Result<(), InfraError> {
    loop {
        // SAFETY: flock on a descriptor this File owns.
        if unsafe { libc::flock(file.as_raw_fd(), operation) } == 0 {
            return Ok(());
        }
        let error = std::io::Error::last_os_error();
        if error.kind() != std::io::ErrorKind::Interrupted {
            return Err(InfraError::new(format!(
                "cannot lock {}: {error}",
                path.display()
            )));
        }
    }
}

fn try_lock(file: &File, operation: libc::c_int) -> bool {
    // SAFETY: flock on a descriptor this File owns.
    unsafe { libc::flock(file.as_raw_fd(), operation | libc::LOCK_NB) == 0 }
}

fn unlock(file: &File) {
    // SAFETY: flock on a descriptor this File owns.
    unsafe {
        libc::flock(file.as_raw_fd(), libc::LOCK_UN);
    }
}

/// What a database's comment says when it may be handed out.
const CLEAN: &str = "verily: clean";

/// The databases of processes that share a server: one template per set
/// of migrations, databases reused across processes.
pub struct SharedDatabases {
    server: PgConnectOptions,
    url_pattern: String,
    template: String,
    /// Holds this process's advisory locks (one per database it holds).
    admin: Mutex<PgConnection>,
    pool: PgPool,
    baseline: Option<Baseline>,
    resetter: Mutex<Option<PgConnection>>,
    pub migrations: usize,
}

impl std::fmt::Debug for SharedDatabases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedDatabases")
            .field("template", &self.template)
            .finish_non_exhaustive()
    }
}

impl SharedDatabases {
    /// Finds the template of these migrations, or makes it (once, under an
    /// advisory lock, for every process).
    pub async fn prepare(
        server: PgConnectOptions,
        url_pattern: String,
        config: &Config,
    ) -> Result<Self, InfraError> {
        let schema = Schema::load(config).await?;
        let template = format!("{}tpl_{:016x}", template::PREFIX, schema.fingerprint());
        let mut admin = PgConnection::connect_with(&server)
            .await
            .map_err(template::sql_error)?;
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(2)
            .connect_lazy_with(server.clone());
        let key = advisory_key(&template);
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(key)
            .execute(&mut admin)
            .await
            .map_err(template::sql_error)?;
        let made = find_template(&mut admin, &template, &server, &schema, config).await;
        let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(key)
            .execute(&mut admin)
            .await;
        let (migrations, baseline) = made?;
        Ok(Self {
            server,
            url_pattern,
            template,
            admin: Mutex::new(admin),
            pool,
            baseline,
            resetter: Mutex::new(None),
            migrations,
        })
    }

    /// A clean database: one another process reset and verified, or a new
    /// clone of the template.
    pub async fn checkout(&self) -> Result<TestDatabase, InfraError> {
        let mut admin = self.admin.lock().await;
        let pattern = format!("{}\\_db\\_%", self.template);
        let candidates: Vec<String> = if self.baseline.is_some() {
            sqlx::query_scalar(
                "SELECT datname::text FROM pg_database
                 WHERE datname LIKE $1 AND shobj_description(oid, 'pg_database') = $2",
            )
            .bind(&pattern)
            .bind(CLEAN)
            .fetch_all(&mut *admin)
            .await
            .map_err(template::sql_error)?
        } else {
            Vec::new()
        };
        for name in candidates {
            let taken: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
                .bind(advisory_key(&name))
                .fetch_one(&mut *admin)
                .await
                .map_err(template::sql_error)?;
            if !taken {
                continue;
            }
            // Another process may have taken and released it meanwhile.
            let still_clean: Option<bool> = sqlx::query_scalar(
                "SELECT shobj_description(oid, 'pg_database') = $2 FROM pg_database WHERE datname = $1",
            )
            .bind(&name)
            .bind(CLEAN)
            .fetch_optional(&mut *admin)
            .await
            .map_err(template::sql_error)?;
            if still_clean == Some(true) {
                comment(&self.pool, &name, "verily: in use").await?;
                return Ok(self.database(name));
            }
            let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
                .bind(advisory_key(&name))
                .execute(&mut *admin)
                .await;
        }
        let name = format!("{}_db_{:016x}", self.template, unique());
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(advisory_key(&name))
            .execute(&mut *admin)
            .await
            .map_err(template::sql_error)?;
        template::execute(
            &self.pool,
            &format!(
                "CREATE DATABASE {} TEMPLATE {}",
                quote(&name),
                quote(&self.template)
            ),
        )
        .await?;
        Ok(self.database(name))
    }

    fn database(&self, name: String) -> TestDatabase {
        TestDatabase {
            options: self.server.clone().database(&name),
            url: self.url_pattern.replace("{database}", &name),
            name,
            observer: Default::default(),
            pool_size: super::budget::POOL_SIZE,
            slot: None,
        }
    }

    /// Resets and verifies the database and marks it clean for the next
    /// process, or drops it.
    pub async fn release(&self, database: TestDatabase) {
        if let Some(baseline) = &self.baseline {
            let session = self.resetter.lock().await.take();
            if let Ok(session) = template::reset(baseline, &database, session).await
                && comment(&self.pool, &database.name, CLEAN).await.is_ok()
            {
                let _ = session.close().await;
                let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
                    .bind(advisory_key(&database.name))
                    .execute(&mut *self.admin.lock().await)
                    .await;
                return;
            }
        }
        let _ = template::execute(
            &self.pool,
            &format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                quote(&database.name)
            ),
        )
        .await;
    }

    /// Closes this process's sessions; the databases stay for the next
    /// process and go with the cluster.
    pub async fn shutdown(&self) {
        if let Some(session) = self.resetter.lock().await.take() {
            let _ = session.close().await;
        }
        self.pool.close().await;
    }

    pub fn template(&self) -> &str {
        &self.template
    }
}

/// The template's baseline, from its comment, or the template made now.
async fn find_template(
    admin: &mut PgConnection,
    template: &str,
    server: &PgConnectOptions,
    schema: &Schema,
    config: &Config,
) -> Result<(usize, Option<Baseline>), InfraError> {
    let found: Option<Option<String>> = sqlx::query_scalar(
        "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1",
    )
    .bind(template)
    .fetch_optional(&mut *admin)
    .await
    .map_err(template::sql_error)?;
    let reuse = config.reuses_databases();
    if let Some(Some(text)) = found
        && let Ok(baseline) = serde_json::from_str::<Option<Baseline>>(&text)
    {
        return Ok((schema.count(), baseline.filter(|_| reuse)));
    }
    // None, or one a killed process left half made.
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect_with(server.clone())
        .await
        .map_err(template::sql_error)?;
    let drop_it = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote(template));
    template::execute(&pool, &drop_it).await?;
    template::execute(&pool, &format!("CREATE DATABASE {}", quote(template))).await?;
    let made = async {
        let migrations = schema.apply(&server.clone().database(template)).await?;
        let baseline = template::capture(&server.clone().database(template))
            .await
            .ok();
        let text = serde_json::to_string(&baseline).expect("a baseline serializes");
        comment(&pool, template, &text).await?;
        Ok::<_, InfraError>((migrations, baseline.filter(|_| reuse)))
    }
    .await;
    if made.is_err() {
        let _ = template::execute(&pool, &drop_it).await;
    }
    pool.close().await;
    made
}

async fn comment(pool: &PgPool, database: &str, text: &str) -> Result<(), InfraError> {
    let literal = format!("'{}'", text.replace('\'', "''"));
    template::execute(
        pool,
        &format!("COMMENT ON DATABASE {} IS {literal}", quote(database)),
    )
    .await
}

/// The advisory lock that stands for a database.
fn advisory_key(name: &str) -> i64 {
    stable_hash(name) as i64
}

fn unique() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_nanos() as u64)
        .unwrap_or_default();
    stable_hash(&format!("{nanos}-{}", std::process::id()))
}
