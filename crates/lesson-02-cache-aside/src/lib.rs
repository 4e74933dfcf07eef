//! # Lesson 2: cache-aside with Redis and a TTL
//!
//! The same `GET /users/{id}` as lesson 1, with Redis in front of it. On a
//! hit the cached JSON is returned as is; on a miss the database is read and
//! the JSON is written to `user:{id}` with a TTL. A `PUT` updates the row and
//! deletes the key. Redis is optional: every call to it has a short timeout,
//! and when it fails the request is served from the database, logged and
//! counted, never failed.
//!
//! ```text
//! just lesson-2                 # or: cargo run -p lesson-02-cache-aside
//! just lesson-2 --serve         # keep serving on 127.0.0.1:3000
//! curl -i http://127.0.0.1:3000/users/123      # X-Cache: MISS, then HIT
//! curl -s http://127.0.0.1:3000/metrics
//! ```
//!
//! The book's chapter "Lesson 2: cache-aside" walks through this file.
//! Knobs (env var, or the flag in `--help`): `CACHE_TTL_SECS` (60),
//! `REDIS_TIMEOUT_MS` (50), `REDIS_URL`, and everything lesson 1 has.
//!
//! # Layout
//!
//! - this file: the pattern. The settings, the state, the handlers, the
//!   read-through and the three cache calls (GET, SET, DEL), each through
//!   `lab::cache::call`, so a Redis failure is a miss.
//! - `update`: the body of `PUT /users/{id}` ([`UpdateUser`]) and its checks.
//! - [`metrics`]: the counters and histogram behind `GET /metrics`.
//! - [`cli`]: the command line (`Args`) and the [`Settings`] it gives.
//! - [`demo`]: the scripted demo behind `just lesson-2`, [`demo::run`]:
//!   miss, hit, TTL, write, and a Redis outage.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use lab::http::{ApiError, db_call, user_id_from_path};
use lab::users::{User, fetch_summary, fetch_user};
use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use serde::Serialize;
use sqlx::PgPool;

pub mod cli;
pub mod demo;
pub mod metrics;
mod update;

pub use crate::update::UpdateUser;

use crate::metrics::Metrics;

// ANCHOR: settings
/// The lesson's knobs.
#[derive(Clone, Debug)]
pub struct Settings {
    /// How long a cached user lives. 60 s: a user's name and email change
    /// rarely, a PUT deletes the key anyway, and the TTL is only the backstop
    /// for writes that bypass this service. Make it as long as a stale copy
    /// is acceptable, not as long as possible.
    pub ttl: Duration,
    /// The longest one Redis call may take. A cache that is slower than the
    /// database it protects is worse than none: tens of milliseconds, far
    /// below the database's latency, and far above a healthy Redis's.
    pub redis_timeout: Duration,
    /// Key prefix, so tests on a shared Redis never collide.
    pub key_prefix: String,
    pub latency: Duration,
    pub db_timeout: Duration,
}
// ANCHOR_END: settings

impl Settings {
    /// The defaults (a 60 s TTL) with no simulated latency and a 200 ms
    /// Redis timeout, under `key_prefix`: what the tests and exercises run
    /// with, each under a key prefix of its own.
    pub fn for_tests(key_prefix: &str) -> Settings {
        Settings {
            ttl: Duration::from_secs(60),
            redis_timeout: Duration::from_millis(200),
            key_prefix: key_prefix.to_string(),
            latency: Duration::ZERO,
            db_timeout: Duration::from_secs(30),
        }
    }

    /// `user:{id}`, under the prefix.
    pub fn key(&self, id: i64) -> String {
        format!("{}user:{id}", self.key_prefix)
    }
}

/// Everything a handler needs; cheap to clone (handles and `Arc`s).
#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    /// Reconnects by itself after Redis comes back; clone it, don't pool it.
    pub redis: ConnectionManager,
    pub settings: Arc<Settings>,
    pub metrics: Metrics,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// The service.
pub fn router(state: AppState) -> Router {
    let routes = Router::new()
        .route("/users/{id}", get(get_user).put(put_user))
        .route("/users/{id}/summary", get(get_summary))
        .route("/metrics", get(metrics::render))
        .route(
            "/healthz",
            get(|| async { Json(serde_json::json!({ "status": "ok" })) }),
        )
        .with_state(state);
    lab::http::finish(routes)
}

// ANCHOR: get_user
/// `GET /users/{id}`: the user, through the cache.
pub async fn get_user(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = user_id_from_path(path)?;
    let load = fetch_user(&state.pool, id, state.settings.latency);
    read_through(&state, &state.settings.key(id), &format!("user {id}"), load).await
}

/// `GET /users/{id}/summary`: the expensive aggregate, through the cache.
pub async fn get_summary(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = user_id_from_path(path)?;
    let key = format!("{}:summary", state.settings.key(id));
    read_through(
        &state,
        &key,
        &format!("user {id}'s summary"),
        fetch_summary(&state.pool, id),
    )
    .await
}
// ANCHOR_END: get_user

// ANCHOR: read_through
/// Cache-aside: Redis first; on a miss, `load` from the database, then
/// store the JSON in Redis with the TTL. `what` names the value in logs.
async fn read_through<T, F>(
    state: &AppState,
    key: &str,
    what: &str,
    load: F,
) -> Result<Response, ApiError>
where
    T: Serialize,
    F: Future<Output = anyhow::Result<Option<T>>>,
{
    let started = Instant::now();
    if let Some(json) = cache_get(state, key).await {
        tracing::info!("Cache hit for {what}");
        state.metrics.hit(started.elapsed());
        return Ok(json_response(json, "HIT"));
    }

    tracing::info!("Cache miss for {what}");
    state.metrics.db_query();
    let value = db_call(state.settings.db_timeout, load).await?;
    // Nothing found is not cached: a 404 is cheap to recompute here, and
    // caching it would hide a row created a moment later for a whole TTL.
    let value = value.ok_or_else(|| ApiError::NotFound(format!("{what} not found")))?;
    let json = serde_json::to_string(&value).map_err(anyhow::Error::from)?;
    cache_set(state, key, &json).await;
    state.metrics.miss(started.elapsed());
    Ok(json_response(json, "MISS"))
}
// ANCHOR_END: read_through

// ANCHOR: cache_calls
/// Reads a key. Any failure (Redis down, paused, slow) is a miss: logged,
/// counted, and answered from the database instead.
#[tracing::instrument(skip(state))]
async fn cache_get(state: &AppState, key: &str) -> Option<String> {
    let mut redis = state.redis.clone();
    let get = redis.get::<_, Option<String>>(key);
    lab::cache::call(state.settings.redis_timeout, get, |why| {
        state.metrics.redis_error();
        tracing::warn!("Redis GET {why}, serving from the database");
    })
    .await
    .flatten()
}

/// Writes a key with the TTL. A failure only costs the next request a miss.
#[tracing::instrument(skip(state, json))]
async fn cache_set(state: &AppState, key: &str, json: &str) {
    let mut redis = state.redis.clone();
    let ttl = state.settings.ttl.as_secs().max(1);
    let set = redis.set_ex::<_, _, ()>(key, json, ttl);
    lab::cache::call(state.settings.redis_timeout, set, |why| {
        state.metrics.redis_error();
        tracing::warn!("Redis SET {why}; the next read will miss");
    })
    .await;
}
// ANCHOR_END: cache_calls

// ANCHOR: put_user
/// `PUT /users/{id}`: update the row, then delete the cached copy.
///
/// Why delete rather than write the new value into Redis? Two writers can
/// interleave: A updates the row, B updates it again, B sets the cache, A
/// sets the cache last. Now Redis holds A's older value until the TTL ends.
/// A delete cannot leave an old value behind: the next read loads whatever
/// the database holds then. (A read that races the write can still put an
/// old value back; lesson 8 closes that gap.)
pub async fn put_user(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    body: Result<Json<UpdateUser>, JsonRejection>,
) -> Result<Json<User>, ApiError> {
    let id = user_id_from_path(path)?;
    let Json(update) = body.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    update.validate()?;

    state.metrics.db_query();
    let update_row = sqlx::query_as(
        "UPDATE users SET name = $2, email = $3 WHERE id = $1 RETURNING id, name, email",
    )
    .bind(id)
    .bind(update.name.trim())
    .bind(update.email.trim())
    .fetch_optional(&state.pool);
    let updated: Option<(i64, String, String)> = db_call(state.settings.db_timeout, async {
        update_row
            .await
            .with_context(|| format!("Failed to update user {id}"))
    })
    .await?;
    let (id, name, email) =
        updated.ok_or_else(|| ApiError::NotFound(format!("user {id} not found")))?;

    cache_delete(&state, &state.settings.key(id)).await;
    Ok(Json(User { id, name, email }))
}
// ANCHOR_END: put_user

/// Deletes a key. If Redis is down the stale copy stays until its TTL: that
/// is the TTL's job as a backstop, and why it must not be too long.
#[tracing::instrument(skip(state))]
async fn cache_delete(state: &AppState, key: &str) {
    let mut redis = state.redis.clone();
    let del = redis.del::<_, ()>(key);
    lab::cache::call(state.settings.redis_timeout, del, |why| {
        state.metrics.redis_error();
        tracing::warn!("Redis DEL {why}; the old copy lives until its TTL");
    })
    .await;
}

/// A 200 with a JSON body that is already serialised, and `X-Cache`.
pub fn json_response(json: String, cache: &'static str) -> Response {
    let mut resp = (StatusCode::OK, json).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert("x-cache", HeaderValue::from_static(cache));
    resp
}

// ANCHOR: redis_manager
/// A Redis connection manager that never holds a request hostage: it
/// connects lazily (the service starts even when Redis is down), gives up
/// on a connection attempt or a response after `timeout`, and retries a
/// reconnect only once before the next request tries again.
pub fn redis_manager(url: &str, timeout: Duration) -> anyhow::Result<ConnectionManager> {
    let client = redis::Client::open(url)?;
    let config = redis::aio::ConnectionManagerConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout))
        .set_number_of_retries(1);
    Ok(ConnectionManager::new_lazy_with_config(client, config)?)
}
// ANCHOR_END: redis_manager

/// Builds the state over a pool and a Redis URL.
pub fn state(pool: PgPool, redis_url: &str, settings: Settings) -> anyhow::Result<AppState> {
    Ok(AppState {
        pool,
        redis: redis_manager(redis_url, settings.redis_timeout)?,
        settings: Arc::new(settings),
        metrics: Metrics::new()?,
    })
}
