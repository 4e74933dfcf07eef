//! What every lesson's command line shares: the flags, their env vars and
//! defaults, and provisioning the lesson's schema.
//!
//! A lesson's `Args` flattens [`CommonArgs`] and adds its own knobs, so
//! `--help` lists everything, and every flag can also be set by env var.

use std::time::{Duration, Instant};

use anyhow::Context;
use sqlx::{Connection, PgPool};

/// Flags and env vars every lesson has.
#[derive(clap::Args, Clone, Debug)]
pub struct CommonArgs {
    /// Serve on 127.0.0.1:PORT until Ctrl-C, instead of running the scripted demo.
    #[arg(long)]
    pub serve: bool,
    /// Port for --serve.
    #[arg(long, env = "PORT", default_value_t = 3000)]
    pub port: u16,
    /// Simulated database latency per query, in ms, spent inside PostgreSQL (pg_sleep).
    #[arg(long = "latency-ms", env = "LAB_DB_LATENCY_MS", default_value_t = 2000)]
    pub latency_ms: u64,
    /// Users to seed when the table is missing or short.
    #[arg(long, env = "LAB_USERS", default_value_t = 10_000, value_parser = clap::value_parser!(i64).range(1..=100_000_000))]
    pub users: i64,
    /// Orders to seed for the summary endpoint (an aggregate over all of them).
    #[arg(long, env = "LAB_ORDERS", default_value_t = 100_000, value_parser = clap::value_parser!(i64).range(0..=100_000_000))]
    pub orders: i64,
    /// Connections in the pool: the number of slow queries that can run at once.
    #[arg(long = "pool-size", env = "DB_POOL_SIZE", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub pool_size: u32,
    /// Longest wait for one query, in ms, before answering 503 [default: latency + 5000].
    #[arg(long = "db-timeout-ms", env = "DB_TIMEOUT_MS")]
    pub db_timeout_ms: Option<u64>,
    /// Schema that holds the lesson's tables, created if missing.
    #[arg(long, env = "LAB_SCHEMA", default_value = "workshop", value_parser = parse_schema)]
    pub schema: String,
}

impl CommonArgs {
    pub fn latency(&self) -> Duration {
        Duration::from_millis(self.latency_ms)
    }
    pub fn db_timeout(&self) -> Duration {
        self.db_timeout_ms
            .map(Duration::from_millis)
            .unwrap_or(self.latency() + Duration::from_secs(5))
    }

    /// Finds PostgreSQL, creates the schema and seeds its users if they are
    /// missing, and returns the server (keep it alive) and a pool whose
    /// `search_path` is the schema.
    pub async fn provision_postgres(&self) -> anyhow::Result<(crate::Server, PgPool)> {
        let server = crate::discover(crate::Kind::Postgres).await?;
        let t0 = Instant::now();
        let mut c = sqlx::PgConnection::connect(server.url())
            .await
            .context("Failed to connect to PostgreSQL")?;
        sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS {}", self.schema))
            .execute(&mut c)
            .await
            .context("Failed to create the lesson's schema")?;
        c.close().await.ok();
        let pool = crate::isolate::schema_pool(server.url(), &self.schema, self.pool_size).await?;
        crate::seed::ensure_users_pg(&pool, self.users).await?;
        crate::seed::ensure_orders_pg(&pool, self.orders, self.users).await?;
        tracing::info!(
            "schema {} has {} users, ready in {:.1?}",
            self.schema,
            self.users,
            t0.elapsed()
        );
        Ok((server, pool))
    }
}

/// The schema name goes into `CREATE SCHEMA`, so only plain identifiers.
pub fn parse_schema(s: &str) -> Result<String, String> {
    let ok = !s.is_empty()
        && s.len() <= 63
        && s.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(s.to_string())
    } else {
        Err("use lowercase letters, digits and _ (e.g. workshop)".into())
    }
}
