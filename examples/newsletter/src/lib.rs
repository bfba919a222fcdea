//! A newsletter service still on sqlx 0.8: subscriptions in PostgreSQL,
//! configured by parts (host, port, user, password, database), as services
//! built on the `config` crate or 12-factor variables are.

use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

/// How the service reaches its database, by parts.
#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    /// A host name, or the directory of a Unix socket.
    pub host: String,
    pub port: u16,
    pub username: String,
    pub password: Option<String>,
    pub database_name: String,
}

impl DatabaseSettings {
    /// Connect options from the parts.
    pub fn connect_options(&self) -> PgConnectOptions {
        let options = PgConnectOptions::new()
            .host(&self.host)
            .port(self.port)
            .username(&self.username)
            .database(&self.database_name);
        match &self.password {
            Some(password) => options.password(password),
            None => options,
        }
    }

    /// A pool on the configured database.
    pub fn pool(&self) -> PgPool {
        PgPoolOptions::new()
            .max_connections(5)
            .connect_lazy_with(self.connect_options())
    }
}

/// Subscribes `email`; a second subscription of the same address is an error.
pub async fn subscribe(pool: &PgPool, email: &str, name: &str) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO subscriptions (email, name) VALUES ($1, $2)")
        .bind(email)
        .bind(name)
        .execute(pool)
        .await?;
    Ok(())
}

/// How many addresses are subscribed.
pub async fn count(pool: &PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM subscriptions")
        .fetch_one(pool)
        .await
}
