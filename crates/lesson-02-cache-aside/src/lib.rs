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
//! `REDIS_TIMEOUT_MS` (50), `MAX_WRITES_IN_FLIGHT` (half of `DB_POOL_SIZE`),
//! `REDIS_URL`, and everything lesson 1 has.
//!
//! # Layout
//!
//! - this file: the pattern. The settings, the state, the handlers, the
//!   read-through and the three cache calls (GET, SET, DEL), each through
//!   `lab::cache::call`, so a Redis failure is a miss.
//! - `update`: the body of `PUT /users/{id}` ([`UpdateUser`]): reading it
//!   (413, 415 and 400 with a JSON error) and its checks.
//! - [`metrics`]: the counters and histogram behind `GET /metrics`.
//! - [`cli`]: the command line (`Args`) and the [`Settings`] it gives.
//! - [`demo`]: the scripted demo behind `just lesson-2`, [`demo::run`]:
//!   miss, hit, TTL, write, and a Redis outage.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use lab::http::{ApiError, db_call, json_body, user_id_from_path};
use lab::log::Throttle;
use lab::users::{User, fetch_summary, fetch_user};
use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use serde::Serialize;
use sqlx::PgPool;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::Instrument;

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

/// Everything a handler needs, behind one `Arc`: `state.pool`,
/// `state.redis` and the rest read through it (`Deref`).
///
/// Why one `Arc` around the whole thing: axum clones the state for every
/// request (the route's service, then the `State` extractor), and a struct
/// of handles costs an atomic add and subtract per handle per clone. The
/// hit-path bench measured it (lesson 2's chapter): one `Arc` makes each
/// clone one atomic add.
#[derive(Clone, Debug)]
pub struct AppState(Arc<Shared>);

/// What [`AppState`] shares.
#[derive(Clone)]
pub struct Shared {
    pub pool: PgPool,
    /// Reconnects by itself after Redis comes back; clone it, don't pool it.
    pub redis: ConnectionManager,
    pub settings: Settings,
    pub metrics: Metrics,
    /// One permit per write in flight (see [`AppState::with_max_writes`]).
    pub writes: Arc<Semaphore>,
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl AppState {
    /// The same state with another Redis connection (the exercises' tests
    /// use one without a timeout of its own, to test the attendee's).
    pub fn with_redis(self, redis: ConnectionManager) -> AppState {
        let mut shared = Arc::unwrap_or_clone(self.0);
        shared.redis = redis;
        AppState(Arc::new(shared))
    }
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// The default bound on writes in flight: half the pool. A write's task
/// outlives its request (see [`put_user`]), so the server's connection
/// limit does not bound writes; without a bound of their own, a flood of
/// PUTs on a locked row (each client gone at once) holds every pool
/// connection and every read waits for the pool and fails. Half leaves
/// the other half to reads, which are most of the traffic and, unlike a
/// write stuck on a row lock, quick to give their connection back.
pub fn default_max_writes(pool_size: u32) -> usize {
    (pool_size as usize / 2).max(1)
}

impl AppState {
    /// At most `max` writes in flight (at least one); past it a PUT is
    /// refused at once with a 503 and `Retry-After`, not queued: a queue in
    /// front of a saturated pool only turns an overload into timeouts, later.
    pub fn with_max_writes(self, max: usize) -> AppState {
        let mut shared = Arc::unwrap_or_clone(self.0);
        shared.writes = Arc::new(Semaphore::new(max.max(1)));
        AppState(Arc::new(shared))
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
    read_through(&state, &state.settings.key(id), What::User(id), load).await
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
        What::Summary(id),
        fetch_summary(&state.pool, id),
    )
    .await
}
// ANCHOR_END: get_user

/// What a request reads, for its log lines and its 404. An enum, not a
/// `format!`ed string: a HIT writes no line at the default level, and a
/// string built for every request and never read is work for nothing.
#[derive(Clone, Copy, Debug)]
enum What {
    User(i64),
    Summary(i64),
}

impl std::fmt::Display for What {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            What::User(id) => write!(f, "user {id}"),
            What::Summary(id) => write!(f, "user {id}'s summary"),
        }
    }
}

// ANCHOR: read_through
/// Cache-aside: Redis first; on a miss, `load` from the database, then
/// store the JSON in Redis with the TTL. `what` names the value in logs.
async fn read_through<T, F>(
    state: &AppState,
    key: &str,
    what: What,
    load: F,
) -> Result<Response, ApiError>
where
    T: Serialize,
    F: Future<Output = anyhow::Result<Option<T>>>,
{
    let started = Instant::now();
    // Per-request lines are DEBUG, not INFO: at tens of thousands of
    // requests a second one line each is tens of megabytes a minute, and
    // the metrics already count every hit and miss. To watch the story of
    // single requests, `RUST_LOG=lesson_02_cache_aside=debug` (the demo does).
    if let Some(json) = cache_get(state, key).await {
        tracing::debug!("Cache hit for {what}");
        state.metrics.hit(started.elapsed());
        return Ok(json_response(json, "HIT"));
    }

    tracing::debug!("Cache miss for {what}");
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

/// A Redis failure is logged at most once per this period per call site,
/// with a count of the ones held back: during an outage every request fails
/// the same way, and one line per request would flood the log just when
/// somebody has to read it. `redis_errors_total` still counts every one.
const WARN_EVERY: Duration = Duration::from_secs(5);

// ANCHOR: cache_calls
/// Reads a key. Any failure (Redis down, paused, slow) is a miss: logged,
/// counted, and answered from the database instead.
///
/// The span is at DEBUG, as the cache calls' are in every lesson: it is made
/// on every request, and at INFO (the default filter) the subscriber would
/// build and format it on every HIT although nothing inside it logs. The
/// hit-path bench measured that at a few percent of a HIT's CPU time.
#[tracing::instrument(level = "debug", skip(state))]
async fn cache_get(state: &AppState, key: &str) -> Option<String> {
    static GET_FAILED: Throttle = Throttle::new(WARN_EVERY);
    let mut redis = state.redis.clone();
    let get = redis.get::<_, Option<String>>(key);
    lab::cache::call(state.settings.redis_timeout, get, |why| {
        state.metrics.redis_error();
        GET_FAILED.warn(format_args!("Redis GET {why}, serving from the database"));
    })
    .await
    .flatten()
}

/// Writes a key with the TTL. A failure only costs the next request a miss.
#[tracing::instrument(level = "debug", skip(state, json))]
async fn cache_set(state: &AppState, key: &str, json: &str) {
    static SET_FAILED: Throttle = Throttle::new(WARN_EVERY);
    let mut redis = state.redis.clone();
    let ttl = state.settings.ttl.as_secs().max(1);
    let set = redis.set_ex::<_, _, ()>(key, json, ttl);
    lab::cache::call(state.settings.redis_timeout, set, |why| {
        state.metrics.redis_error();
        SET_FAILED.warn(format_args!("Redis SET {why}; the next read will miss"));
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
/// old value back: the stale-set race, which lesson 8 reproduces and
/// closes twice, with a versioned set and with leases.)
///
/// Why a task of its own? A handler is a future, and a future that is
/// dropped simply stops: at our own timeout, or when the client hangs up.
/// Dropped after the UPDATE was sent, it would stop waiting, but PostgreSQL
/// would not stop working: it commits when the row lock comes free, and the
/// DEL after it never runs, so reads serve the old value until the TTL,
/// while the client was told the write failed. A spawned task is not part
/// of the request: it runs the UPDATE and then the DEL to the end, whatever
/// becomes of the request, and the handler only waits for its verdict.
///
/// Because the task outlives its request, the server's connection limit no
/// longer bounds how many writes run: a permit from `state.writes` does. It
/// is taken before the task starts and moved into it, so it is held until
/// the UPDATE and the DEL are done, not just until the client hangs up.
pub async fn put_user(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    body: Result<Json<UpdateUser>, JsonRejection>,
) -> Result<Response, ApiError> {
    let id = user_id_from_path(path)?;
    let update = json_body(body)?;
    update.validate()?;

    let Ok(permit) = state.writes.clone().try_acquire_owned() else {
        state.metrics.write_shed();
        return Ok(too_many_writes());
    };
    let write = update_then_delete(state.clone(), id, update, permit);
    let write = tokio::spawn(write.in_current_span());
    // The write fits in `db_timeout`: the wait for a pool connection and
    // the UPDATE share it (see `update_row`), and the database tells us
    // when it gave up; waiting a little longer lets that verdict, "not
    // applied", reach the client. Only when even the verdict does not come
    // (a frozen server, a lost network) do we not know, and say for how
    // long the write may still land: until the task's own bound.
    let patience = state.settings.db_timeout + VERDICT_GRACE;
    match tokio::time::timeout(patience, write).await {
        Ok(Ok(outcome)) => Ok(Json(outcome?).into_response()),
        // The task panicked, or the runtime is shutting down.
        Ok(Err(join_error)) => Err(ApiError::Internal(join_error.into())),
        Err(_) => {
            let window = task_bound(state.settings.db_timeout).saturating_sub(patience);
            Err(ApiError::Unavailable(format!(
                "the database did not confirm the update of user {id} within {patience:?}: \
                 it may still be applied within the next {window:?}; read the user back \
                 after that, before retrying"
            )))
        }
    }
}

/// The 503 for a PUT refused because `MAX_WRITES_IN_FLIGHT` writes are
/// running: named, so a client can tell it from a timeout, and with
/// `Retry-After`, because by then some of them will have ended.
fn too_many_writes() -> Response {
    let mut resp = ApiError::Unavailable(TOO_MANY_WRITES.into()).into_response();
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    resp
}

/// The error of [`too_many_writes`]; nothing was written.
pub const TOO_MANY_WRITES: &str = "too many writes in flight, retry: the update was not applied";
// ANCHOR_END: put_user

/// How much longer than `db_timeout` the handler waits for the database's
/// own verdict, which arrives a round trip after its timer fires.
const VERDICT_GRACE: Duration = Duration::from_secs(1);

/// The longest a write's task runs, `db_timeout` plus 5 s: far past the
/// database's own timeout, it fires only when the server cannot even say
/// it gave up (frozen, or the network is gone), so that a task cannot hold
/// its permit and a pool connection forever.
fn task_bound(db_timeout: Duration) -> Duration {
    db_timeout + VERDICT_GRACE * 5
}

// ANCHOR: update_then_delete
/// The write, in its own task: the UPDATE, then the DEL, always in that
/// order and always both. The DEL runs whatever the UPDATE's outcome: after
/// a failure it costs one miss, after a success it is the invalidation,
/// and when we cannot tell which it was, only a DEL is right either way.
/// (A DEL *before* the UPDATE would not help: until the UPDATE commits, the
/// old value is the database's value, and the next read caches it again.)
///
/// `_permit` is this write's place under `MAX_WRITES_IN_FLIGHT`, released
/// when the task ends, however it ends.
async fn update_then_delete(
    state: AppState,
    id: i64,
    update: UpdateUser,
    _permit: OwnedSemaphorePermit,
) -> Result<User, ApiError> {
    state.metrics.db_query();
    let limit = state.settings.db_timeout;
    // The task's own bound (see `task_bound`). When it fires the DEL below
    // still runs; the outcome stays unknown, and the log says so. Lesson 8
    // closes what is left of that window.
    let give_up = task_bound(limit);
    let outcome = tokio::time::timeout(give_up, update_row(&state.pool, id, &update, limit)).await;
    cache_delete(&state, &state.settings.key(id)).await;
    match outcome {
        Ok(Ok(Some(user))) => Ok(user),
        Ok(Ok(None)) => Err(ApiError::NotFound(format!("user {id} not found"))),
        // No pool connection came free in time: nothing was sent.
        Ok(Err(sqlx::Error::PoolTimedOut)) => Err(ApiError::Unavailable(format!(
            "the update of user {id} was not applied: no database connection came free \
                 within {limit:?}; retry later"
        ))),
        // The statement was cancelled and its transaction rolled back.
        Ok(Err(e)) if is_query_canceled(&e) => Err(ApiError::Unavailable(format!(
            "the update of user {id} was not applied: the database gave up after {limit:?} \
             (the row is busy or the database is slow); retry later"
        ))),
        Ok(Err(e)) => {
            let e = anyhow::Error::from(e).context(format!("Failed to update user {id}"));
            if lab::http::unreachable(&e) {
                // A connection lost mid-transaction may have lost it before
                // or after COMMIT: the client cannot be told which.
                tracing::warn!("{e:#}");
                Err(ApiError::Unavailable(format!(
                    "the database could not be reached: the update of user {id} may not \
                     have been applied; read the user back before retrying"
                )))
            } else {
                Err(ApiError::Internal(e))
            }
        }
        Err(_) => {
            tracing::error!(
                "the update of user {id} got no answer within {give_up:?}: its outcome is \
                 unknown; the cached copy was deleted anyway"
            );
            Err(ApiError::Unavailable(format!(
                "the database did not answer the update of user {id}"
            )))
        }
    }
}

/// The UPDATE, in a transaction that tells PostgreSQL to give up after
/// what is left of `limit` (`SET LOCAL statement_timeout`, which covers
/// waiting for a row lock). Without it the database would wait for the
/// lock as long as it takes, and commit long after the client stopped
/// waiting; with it, a timeout is a rollback, so "not applied" is the truth.
///
/// The wait for a pool connection counts against the same `limit`: a
/// statement timeout cannot cover it (nothing has reached the database
/// yet), and the pool's own `acquire_timeout` may be longer. Bounded here,
/// a write that could not even start ends as `PoolTimedOut` within
/// `limit`, "not applied", and one that started ends within `limit` plus a
/// round trip, before the handler stops waiting.
#[tracing::instrument(skip(pool, update, limit))]
async fn update_row(
    pool: &PgPool,
    id: i64,
    update: &UpdateUser,
    limit: Duration,
) -> Result<Option<User>, sqlx::Error> {
    let started = Instant::now();
    let mut tx = tokio::time::timeout(limit, pool.begin())
        .await
        .map_err(|_| sqlx::Error::PoolTimedOut)??;
    let left = limit.saturating_sub(started.elapsed());
    // `set_config(.., true)` is `SET LOCAL` with a bind parameter: it lasts
    // until the transaction ends, so the pooled connection keeps its default.
    sqlx::query("SELECT set_config('statement_timeout', $1, true)")
        .bind(format!("{}ms", left.as_millis().max(1)))
        .execute(&mut *tx)
        .await?;
    let row: Option<(i64, String, String)> = sqlx::query_as(
        "UPDATE users SET name = $2, email = $3 WHERE id = $1 RETURNING id, name, email",
    )
    .bind(id)
    .bind(update.name.trim())
    .bind(update.email.trim())
    .fetch_optional(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(row.map(|(id, name, email)| User { id, name, email }))
}
// ANCHOR_END: update_then_delete

/// SQLSTATE 57014, `query_canceled`: what a `statement_timeout` raises.
fn is_query_canceled(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.code().as_deref() == Some("57014"))
}

/// Deletes a key. If Redis is down the stale copy stays until its TTL: that
/// is the TTL's job as a backstop, and why it must not be too long. (The
/// lost invalidation: lesson 8 closes it with an outbox that the database
/// writes in the writer's own transaction, and a relay that retries.)
#[tracing::instrument(skip(state))]
async fn cache_delete(state: &AppState, key: &str) {
    static DEL_FAILED: Throttle = Throttle::new(WARN_EVERY);
    let mut redis = state.redis.clone();
    let del = redis.del::<_, ()>(key);
    lab::cache::call(state.settings.redis_timeout, del, |why| {
        state.metrics.redis_error();
        DEL_FAILED.warn(format_args!(
            "Redis DEL {why}; the old copy lives until its TTL"
        ));
    })
    .await;
}

/// A 200 with a JSON body that is already serialised, and `X-Cache`.
pub fn json_response(json: String, cache: &'static str) -> Response {
    // Typed header names: a `&str` name is parsed and validated on every
    // insert, a `HeaderName` constant once, at compile time.
    let headers = [
        (
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        ),
        (lab::http::X_CACHE, HeaderValue::from_static(cache)),
    ];
    (StatusCode::OK, headers, json).into_response()
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
    Ok(AppState(Arc::new(Shared {
        redis: redis_manager(redis_url, settings.redis_timeout)?,
        writes: Arc::new(Semaphore::new(default_max_writes(
            pool.options().get_max_connections(),
        ))),
        pool,
        settings,
        metrics: Metrics::new()?,
    })))
}
