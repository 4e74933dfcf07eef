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
//!
//! # Layout
//!
//! - this file: the state, the router and the handlers, the whole lesson.
//! - [`cli`]: the command line (`Args`) and [`cli::provision`], which turns
//!   it into a seeded PostgreSQL and an [`AppState`].
//! - [`demo`]: the scripted demo behind `just lesson-1`, [`demo::run`].

use std::time::Duration;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use lab::http::{ApiError, db_call, user_id_from_path};
use lab::users::{Summary, User, fetch_summary, fetch_user};
use sqlx::PgPool;

pub mod cli;
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
        .route("/users/{id}/summary", get(get_summary))
        .route("/healthz", get(healthz))
        .with_state(state);
    lab::http::finish(routes)
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
    let user = db_call(state.db_timeout, fetch_user(&state.pool, id, state.latency)).await?;
    user.map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("user {id} not found")))
}
// ANCHOR_END: get_user

/// `GET /users/{id}/summary`: the expensive query, straight to the database.
pub async fn get_summary(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Summary>, ApiError> {
    let id = user_id_from_path(path)?;
    let summary = db_call(state.db_timeout, fetch_summary(&state.pool, id)).await?;
    summary
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("user {id} not found")))
}

/// Liveness only: it answers without touching the database, so a slow
/// database does not get the service restarted by an orchestrator.
async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}
