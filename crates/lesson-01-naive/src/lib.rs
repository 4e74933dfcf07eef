//! # Lesson 1: the naive endpoint
//!
//! `GET /users/{id}` reads PostgreSQL on every request. There is no cache, so
//! every request pays the database's full latency, the second read of a user
//! as much as the first. This is the baseline that every later lesson
//! measures itself against.
//!
//! Run the scripted demo, which provisions PostgreSQL, seeds users, serves on
//! a free port, makes a few requests and prints what each cost:
//!
//! ```text
//! just lesson-1                 # or: cargo run -p lesson-01-naive
//! just lesson-1 --serve         # keep serving on 127.0.0.1:3000 for curl
//! curl -i http://127.0.0.1:3000/users/123
//! ```
//!
//! The book's chapter "Lesson 1: the naive endpoint" walks through this file.
//! Knobs (env var, or the flag in `--help`): `LAB_DB_LATENCY_MS` (2000),
//! `PORT` (3000), `LAB_USERS` (10000), `DB_POOL_SIZE` (10), `DB_TIMEOUT_MS`
//! (latency + 5000), `LAB_SCHEMA` (workshop), and the harness's
//! `DATABASE_URL` / `LAB_BACKEND`.

use std::time::{Duration, Instant};

use anyhow::Context;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use lab::http::{ApiError, user_id_from_path};
use lab::users::{User, fetch_user};
use sqlx::PgPool;

pub mod demo;

// ANCHOR: state
/// What every handler needs. Cloned per request, so it holds only handles:
/// `PgPool` is an `Arc` inside.
#[derive(Clone, Debug)]
pub struct AppState {
    pub pool: PgPool,
    /// Simulated latency, spent inside the database on every query.
    pub latency: Duration,
    /// The longest we wait for one query before answering 503. Without it a
    /// stuck database holds the request, and its pool connection, forever.
    pub db_timeout: Duration,
}
// ANCHOR_END: state

// ANCHOR: router
/// The service: one resource, a health check, and JSON errors everywhere else.
pub fn router(state: AppState) -> Router {
    let routes = Router::new()
        .route("/users/{id}", get(get_user))
        .route("/healthz", get(healthz))
        .with_state(state);
    lab::http::with_json_fallbacks(routes)
}
// ANCHOR_END: router

// ANCHOR: get_user
/// `GET /users/{id}`: straight to the database, every time.
pub async fn get_user(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<User>, ApiError> {
    // Bad input is rejected before it costs a database round trip.
    let id = user_id_from_path(path)?;
    let user = tokio::time::timeout(state.db_timeout, fetch_user(&state.pool, id, state.latency))
        .await
        .map_err(|_| {
            ApiError::Unavailable(format!(
                "the database did not answer within {:?}",
                state.db_timeout
            ))
        })??;
    user.map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("user {id} not found")))
}
// ANCHOR_END: get_user

/// Liveness only: it answers without touching the database, so a slow
/// database does not get the service restarted by an orchestrator.
async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

/// The lesson's settings, from flags or env vars.
#[derive(clap::Parser, Clone, Debug)]
#[command(
    name = "lesson-01-naive",
    about = "Lesson 1: GET /users/{id} straight from a slow PostgreSQL, no cache."
)]
pub struct Args {
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

impl Args {
    pub fn latency(&self) -> Duration {
        Duration::from_millis(self.latency_ms)
    }
    pub fn db_timeout(&self) -> Duration {
        self.db_timeout_ms
            .map(Duration::from_millis)
            .unwrap_or(self.latency() + Duration::from_secs(5))
    }
}

/// The schema name goes into `CREATE SCHEMA`, so only plain identifiers.
fn parse_schema(s: &str) -> Result<String, String> {
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

/// Finds PostgreSQL, creates and seeds the lesson's schema if needed, and
/// returns the server handle (keep it alive) and the state to serve with.
pub async fn provision(args: &Args) -> anyhow::Result<(lab::Server, AppState)> {
    let server = lab::discover(lab::Kind::Postgres).await?;
    let t0 = Instant::now();
    {
        use sqlx::Connection;
        let mut c = sqlx::PgConnection::connect(server.url())
            .await
            .context("Failed to connect to PostgreSQL")?;
        sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS {}", args.schema))
            .execute(&mut c)
            .await
            .context("Failed to create the lesson's schema")?;
    }
    let pool = lab::isolate::schema_pool(server.url(), &args.schema, args.pool_size).await?;
    lab::seed::ensure_users_pg(&pool, args.users).await?;
    tracing::info!(
        "schema {} has {} users, ready in {:.1?}",
        args.schema,
        args.users,
        t0.elapsed()
    );
    let state = AppState {
        pool,
        latency: args.latency(),
        db_timeout: args.db_timeout(),
    };
    Ok((server, state))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn defaults_tell_the_workshop_story() {
        let a = Args::try_parse_from(["lesson-01-naive"]).expect("defaults parse");
        assert_eq!(a.latency(), Duration::from_secs(2));
        assert_eq!(a.db_timeout(), Duration::from_secs(7));
        assert!(!a.serve);
    }

    #[test]
    fn bad_flags_are_rejected_with_a_reason() {
        for bad in [
            vec!["x", "--schema", "Robert'); DROP TABLE users;--"],
            vec!["x", "--users", "0"],
            vec!["x", "--latency-ms", "lots"],
            vec!["x", "--pool-size", "0"],
        ] {
            assert!(
                Args::try_parse_from(&bad).is_err(),
                "{bad:?} should be rejected"
            );
        }
    }
}
