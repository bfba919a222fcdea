//! The databases of the processes of a nextest run that share one server
//! (see `postgres/shared.rs`): one template per set of migrations, named
//! after their hash and made once under an advisory lock, its baseline kept
//! in its comment; test databases reused across processes: a process takes
//! one whose comment says `clean` and whose advisory lock it can get (held
//! until it exits), and after its test resets and verifies it and marks it
//! `clean` again. A database a process left any other way is never handed
//! out again; all of them go with the cluster.

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{Connection, PgPool};
use tokio::sync::Mutex;

use super::reset::Baseline;
use super::template::{self, TestDatabase};
use crate::config::Config;
use crate::hash::stable_hash;
use crate::infra::InfraError;
use crate::infra::postgres::migrations::Schema;
use crate::infra::postgres::sql::{execute, quote, sql_error};
use crate::infra::process;

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
            .map_err(sql_error)?;
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(2)
            .connect_lazy_with(server.clone());
        let key = advisory_key(&template);
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(key)
            .execute(&mut admin)
            .await
            .map_err(sql_error)?;
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
            .map_err(sql_error)?
        } else {
            Vec::new()
        };
        for name in candidates {
            let taken: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
                .bind(advisory_key(&name))
                .fetch_one(&mut *admin)
                .await
                .map_err(sql_error)?;
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
            .map_err(sql_error)?;
            if still_clean == Some(true) {
                comment(&self.pool, &name, "verily: in use").await?;
                return Ok(self.database(name));
            }
            let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
                .bind(advisory_key(&name))
                .execute(&mut *admin)
                .await;
        }
        let name = format!("{}_db_{:016x}", self.template, process::run_id());
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(advisory_key(&name))
            .execute(&mut *admin)
            .await
            .map_err(sql_error)?;
        execute(
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
            test: "",
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
        let _ = execute(
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
    .map_err(sql_error)?;
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
        .map_err(sql_error)?;
    let drop_it = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote(template));
    execute(&pool, &drop_it).await?;
    execute(&pool, &format!("CREATE DATABASE {}", quote(template))).await?;
    let made = async {
        let migrations = schema
            .migrate_template(&server.clone().database(template))
            .await?;
        let baseline = template::capture(&server.clone().database(template))
            .await
            .ok();
        let text = serde_json::to_string(&baseline).expect("a baseline serializes");
        comment(&pool, template, &text).await?;
        Ok::<_, InfraError>((migrations, baseline.filter(|_| reuse)))
    }
    .await;
    if made.is_err() {
        let _ = execute(&pool, &drop_it).await;
    }
    pool.close().await;
    made
}

async fn comment(pool: &PgPool, database: &str, text: &str) -> Result<(), InfraError> {
    let literal = format!("'{}'", text.replace('\'', "''"));
    execute(
        pool,
        &format!("COMMENT ON DATABASE {} IS {literal}", quote(database)),
    )
    .await
}

/// The advisory lock that stands for a database.
fn advisory_key(name: &str) -> i64 {
    stable_hash(name) as i64
}
