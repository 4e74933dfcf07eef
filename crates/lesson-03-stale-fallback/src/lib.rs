//! # Lesson 3: stale fallback and cache-first
//!
//! A cache makes a service fast while the database is up; this lesson makes
//! it *useful* while the database is down. Stale data beats no data:
//!
//! - Every cached user carries the time it was fetched ([`entry`]). Younger
//!   than the **soft TTL** it is served as a `HIT`. Older, the database is
//!   tried under a timeout, and if that fails the old copy is served with
//!   `X-Cache: STALE` and an honest `Age`. Redis drops it after the **hard
//!   TTL**.
//! - A **circuit breaker** ([`breaker`]) stops calling a database that failed
//!   K times in a row, so an outage is answered at cache speed, not at the
//!   speed of a timeout.
//! - **Stale-while-revalidate** (`CACHE_MODE=swr`) serves the stale copy at
//!   once and refreshes it in the background, one refresh per key.
//! - **Cache-first** (`CACHE_MODE=cache-first`) answers every read from the
//!   cache; misses and refreshes go to the database in the background, at
//!   most `MAX_BACKGROUND_LOADS` at once ([`inflight`]); past that, a miss
//!   is a 503 "too many loads in flight, retry", counted in
//!   `background_loads_shed_total`.
//! - No copy and no database: 503 with `Retry-After`, fast. The database's
//!   own error text goes to the log, never to the client.
//!
//! ```text
//! just lesson-3                  # the outage experiment, short version (~1 min)
//! just lesson-3 --serve          # serve on 127.0.0.1:3000
//! curl -i http://127.0.0.1:3000/users/123     # MISS, then HIT; STALE once it is old and the DB fails
//! ```
//!
//! Knobs (env var, or the flag in `--help`): `CACHE_SOFT_TTL_SECS` (60),
//! `CACHE_HARD_TTL_SECS` (86400), `CACHE_MODE` (fallback), `DB_TIMEOUT_MS`,
//! `BREAKER_FAILURES` (5), `BREAKER_WINDOW` (20, 0 for off),
//! `BREAKER_FAILURE_RATE` (50), `BREAKER_OPEN_SECS` (5), `REDIS_TIMEOUT_MS` (50),
//! `MAX_BACKGROUND_LOADS` (twice `DB_POOL_SIZE`, so 20), `LAB_DB_LATENCY_MS`,
//! `REDIS_URL`, `DATABASE_URL`.
//!
//! # Logging
//!
//! Nothing here logs at INFO per request: at tens of thousands of requests
//! a second a line each is the log's whole budget, spent saying that
//! things work. A hit, a miss and a refresh are counted in `/metrics`
//! instead (and logged at DEBUG where a line helps). The warnings that
//! repeat once per request while something is broken (Redis failing, the
//! database failing, stale copies served, loads shed) go through a
//! `lab::log::Throttle`: the first at once, then one line per 5 s with a
//! count of the rest. The breaker's changes of state are rare and are the
//! news, so they are logged every time.
//!
//! # Layout
//!
//! - This file is the pattern: [`Settings`], [`AppState`], the handler
//!   [`get_user`], the database read behind it and the two cache calls.
//! - [`entry`]: what is stored in Redis, a user with the time it was
//!   fetched, and whether that copy is fresh or stale.
//! - [`breaker`]: the circuit breaker, closed, open or half-open.
//! - [`inflight`]: at most one background load per key, and a bound on
//!   how many run at once.
//! - [`response`]: a cached entry as a response (`X-Cache`, `Age`), and the
//!   errors a request can end in.
//! - [`metrics`]: `GET /metrics`, the counters and the breaker's gauge.
//! - [`cli`]: the command line, each knob as a flag or an env var.
//! - [`demo`]: `just lesson-3`, the outage experiment with a live ticker.
//! - [`experiment`]: the outage experiment (four services, one real
//!   PostgreSQL outage), its load generator and its summary.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::get;
use lab::http::user_id_from_path;
use lab::log::Throttle;
use lab::users::{User, fetch_user};
use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use sqlx::PgPool;

pub mod breaker;
pub mod cli;
pub mod demo;
pub mod entry;
pub mod experiment;
pub mod inflight;
pub mod metrics;
pub mod response;

use crate::breaker::{Breaker, BreakerConfig};
use crate::entry::{Entry, Freshness};
use crate::inflight::{Busy, InFlight};
use crate::metrics::Metrics;
pub use crate::response::{DbDown, ServeError, respond};

// ANCHOR: settings
/// How a read that finds a stale (or no) copy behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// Stale: try the database, serve the stale copy if it fails.
    /// Missing: read the database (503 if it fails).
    Fallback,
    /// Stale: serve it now, refresh in the background. Missing: as fallback.
    Swr,
    /// Every read is answered from the cache. Stale: refresh in the
    /// background. Missing: load in the background and answer 503.
    CacheFirst,
}

/// The lesson's knobs.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Younger than this, a copy is served without asking the database.
    /// 60 s, as lesson 2's TTL: how stale a user may be *when the database
    /// is healthy*.
    pub soft_ttl: Duration,
    /// How long Redis keeps a copy at all: how stale a user may be *when the
    /// database is down*. 24 h covers a long outage; it costs only memory.
    pub hard_ttl: Duration,
    pub mode: Mode,
    pub breaker: BreakerConfig,
    /// The longest one Redis call may take (lesson 2 explains the 50 ms).
    pub redis_timeout: Duration,
    /// The longest one database call may take before the stale copy is
    /// served instead. This is the price of every stale answer while the
    /// breaker is still closed, so it should be a small multiple of the
    /// query's normal latency, not the 30 s a pool waits by default.
    pub db_timeout: Duration,
    pub latency: Duration,
    /// Key prefix, so tests and experiments on one Redis never collide.
    pub key_prefix: String,
    /// The most background loads (refreshes, and cache-first's misses)
    /// running at once. Past it a load is shed, not queued. Each load
    /// needs a pool connection, so more than a small multiple of the pool
    /// only makes loads wait for a connection until the database timeout
    /// fails them, and those failures would open the breaker for everyone.
    /// Twice the pool keeps every connection busy with one load waiting
    /// behind each.
    pub max_background_loads: usize,
}
// ANCHOR_END: settings

impl Settings {
    /// Not lesson 2's `user:{id}`: the value here is an [`Entry`], and
    /// lesson 2 and 3 may share one Redis.
    pub fn key(&self, id: i64) -> String {
        format!("{}entry:user:{id}", self.key_prefix)
    }
}

/// Everything a handler needs, behind one `Arc` (read through `Deref`):
/// axum clones the state for every request, and one `Arc` makes that one
/// atomic add (lesson 2's `AppState` says why it matters under load).
#[derive(Clone, Debug)]
pub struct AppState(Arc<Shared>);

/// What [`AppState`] shares.
#[derive(Clone)]
pub struct Shared {
    pub pool: PgPool,
    pub redis: ConnectionManager,
    pub settings: Settings,
    pub breaker: Arc<Breaker>,
    pub inflight: InFlight,
    pub metrics: Metrics,
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

// ANCHOR: get_user
/// `GET /users/{id}`: fresh from the cache, else from the database, else a
/// stale copy, else 503.
pub async fn get_user(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ServeError> {
    let id = user_id_from_path(path)?;
    let s = &state.settings;
    let cached = cache_get(&state, id).await;
    let fresh = |e: &Entry<User>| e.freshness(SystemTime::now(), s.soft_ttl) == Freshness::Fresh;

    match (s.mode, cached) {
        (_, Some(entry)) if fresh(&entry) => {
            state.metrics.bump(metrics::HITS);
            respond(id, entry, "HIT")
        }
        // Stale, and the request may wait for the database.
        (Mode::Fallback, Some(stale)) => match load(&state, id).await {
            Ok(entry) => {
                state.metrics.bump(metrics::MISSES);
                respond(id, entry, "MISS")
            }
            Err(why) => {
                static STALE_SERVED: Throttle = Throttle::new(Duration::from_secs(5));
                STALE_SERVED.warn(format_args!("serving a stale copy of user {id}: {why}"));
                state.metrics.bump(metrics::STALE);
                respond(id, stale, "STALE")
            }
        },
        // Stale, and the request does not wait: refresh behind its back.
        // A refresh that is shed costs this answer nothing.
        (Mode::Swr | Mode::CacheFirst, Some(stale)) => {
            let _ = refresh_in_background(&state, id);
            state.metrics.bump(metrics::STALE);
            respond(id, stale, "STALE")
        }
        // Nothing cached, and cache-first never waits for the database.
        (Mode::CacheFirst, None) => {
            state.metrics.bump(metrics::UNAVAILABLE);
            let retry_after = Duration::from_secs(1);
            Err(match refresh_in_background(&state, id) {
                Ok(()) | Err(Busy::Running) => ServeError::Unavailable {
                    message: format!("user {id} is not cached yet; it is being loaded"),
                    retry_after,
                },
                Err(Busy::Full) => ServeError::TooManyLoads { retry_after },
            })
        }
        // Nothing cached: the database or nothing.
        (Mode::Fallback | Mode::Swr, None) => match load(&state, id).await {
            Ok(entry) => {
                state.metrics.bump(metrics::MISSES);
                respond(id, entry, "MISS")
            }
            Err(why) => {
                state.metrics.bump(metrics::UNAVAILABLE);
                Err(ServeError::Unavailable {
                    message: format!("user {id} is not cached and {why}"),
                    retry_after: why.retry_after(),
                })
            }
        },
    }
}
// ANCHOR_END: get_user

// ANCHOR: load
/// One database read through the breaker and under the timeout. A success
/// is written to the cache with a new timestamp. "No such user" is a
/// success too, for the breaker as for the cache: the database answered.
/// A failure's cause is logged here, and only here; the caller gets a
/// [`DbDown`] whose message is fit for a client.
#[tracing::instrument(skip(state))]
async fn load(state: &AppState, id: i64) -> Result<Entry<User>, DbDown> {
    let s = &state.settings;
    let permit = state.breaker.acquire().map_err(|refused| {
        state.metrics.bump(metrics::BREAKER_REFUSED);
        DbDown::BreakerOpen(refused)
    })?;
    state.metrics.bump(metrics::DB_ATTEMPTS);
    let user =
        match tokio::time::timeout(s.db_timeout, fetch_user(&state.pool, id, s.latency)).await {
            Ok(Ok(user)) => {
                permit.success();
                user
            }
            Ok(Err(e)) => {
                permit.failure();
                state.metrics.bump(metrics::DB_FAILURES);
                static DB_FAILED: Throttle = Throttle::new(Duration::from_secs(5));
                DB_FAILED.warn(format_args!("database read failed: {e:#}"));
                return Err(DbDown::Failed(e));
            }
            Err(_) => {
                permit.failure();
                state.metrics.bump(metrics::DB_FAILURES);
                return Err(DbDown::Timeout(s.db_timeout));
            }
        };
    let entry = Entry::new(user, SystemTime::now());
    cache_set(state, id, &entry).await;
    Ok(entry)
}

/// Starts a background load of `id`, unless one is already running
/// (`Busy::Running`) or `max_background_loads` are (`Busy::Full`: shed,
/// counted and logged, never queued).
fn refresh_in_background(state: &AppState, id: i64) -> Result<(), Busy> {
    let claim = state.inflight.try_claim(id).inspect_err(|busy| {
        if *busy == Busy::Full {
            state.metrics.bump(metrics::LOADS_SHED);
            static SHED: Throttle = Throttle::new(Duration::from_secs(5));
            SHED.warn(format_args!(
                "{} background loads running, the most allowed: shedding more",
                state.inflight.capacity()
            ));
        }
    })?;
    state.metrics.bump(metrics::BACKGROUND_REFRESHES);
    let state = state.clone();
    tokio::spawn(async move {
        let _claim = claim; // released when the refresh ends, however it ends
        if let Err(why) = load(&state, id).await {
            tracing::debug!("background refresh of user {id} failed: {why}");
        }
    });
    Ok(())
}
// ANCHOR_END: load

// ANCHOR: cache_calls
/// Reads the entry. A Redis failure, or a value that is not an entry, is
/// a miss: logged and counted. (A DEBUG span, as in lesson 2: it is made on
/// every request.)
#[tracing::instrument(level = "debug", skip(state))]
async fn cache_get(state: &AppState, id: i64) -> Option<Entry<User>> {
    let mut redis = state.redis.clone();
    let key = state.settings.key(id);
    let get = redis.get::<_, Option<String>>(&key);
    let json = lab::cache::call(state.settings.redis_timeout, get, |why| {
        state.metrics.bump(metrics::REDIS_ERRORS);
        static GET_FAILED: Throttle = Throttle::new(Duration::from_secs(5));
        GET_FAILED.warn(format_args!("Redis GET {why}; treated as a miss"));
    })
    .await
    // `None`: Redis failed; `Some(None)`: no such key. Both are a miss.
    .flatten()?;
    serde_json::from_str(&json)
        .inspect_err(|e| {
            static MALFORMED: Throttle = Throttle::new(Duration::from_secs(5));
            MALFORMED.warn(format_args!("ignoring a malformed entry at {key}: {e}"));
        })
        .ok()
}

/// Writes the entry. A user kept for the hard TTL; "no such user" only in
/// cache-first mode, which has no other way to answer 404, and only for the
/// soft TTL, so a user created a moment later appears soon. In the other
/// modes a 404 deletes the key, so a deleted user's stale copy is never
/// served again.
#[tracing::instrument(level = "debug", skip(state, entry))]
async fn cache_set(state: &AppState, id: i64, entry: &Entry<User>) {
    let s = &state.settings;
    let mut redis = state.redis.clone();
    let key = s.key(id);
    let ttl = match (&entry.value, s.mode) {
        (Some(_), _) => Some(s.hard_ttl),
        (None, Mode::CacheFirst) => Some(s.soft_ttl),
        (None, _) => None,
    };
    // An entry always serialises; were it ever not to, not caching is safe.
    let Ok(json) =
        serde_json::to_string(entry).inspect_err(|e| tracing::warn!("not caching user {id}: {e}"))
    else {
        return;
    };
    let write = async {
        match ttl {
            Some(ttl) => {
                redis
                    .set_ex::<_, _, ()>(&key, json, ttl.as_secs().max(1))
                    .await
            }
            None => redis.del::<_, ()>(&key).await,
        }
    };
    lab::cache::call(s.redis_timeout, write, |why| {
        state.metrics.bump(metrics::REDIS_ERRORS);
        static WRITE_FAILED: Throttle = Throttle::new(Duration::from_secs(5));
        WRITE_FAILED.warn(format_args!("Redis write {why}; the next read will miss"));
    })
    .await;
}
// ANCHOR_END: cache_calls

impl Settings {
    /// The defaults, with no simulated latency, a 500 ms database timeout,
    /// a breaker of 3 failures in a row and 1 s (no failure-rate rule), and at
    /// most 10 background loads
    /// (twice the tests' pool of 5): what the tests run with.
    pub fn for_tests(key_prefix: &str, mode: Mode) -> Settings {
        Settings {
            soft_ttl: Duration::from_secs(60),
            hard_ttl: Duration::from_secs(86_400),
            mode,
            breaker: BreakerConfig {
                failures: 3,
                open_for: Duration::from_secs(1),
                rate: None,
            },
            redis_timeout: Duration::from_millis(200),
            db_timeout: Duration::from_millis(500),
            latency: Duration::ZERO,
            key_prefix: key_prefix.to_string(),
            max_background_loads: 10,
        }
    }
}

/// Builds the state over a pool and a Redis URL.
pub fn state(pool: PgPool, redis_url: &str, settings: Settings) -> anyhow::Result<AppState> {
    Ok(AppState(Arc::new(Shared {
        pool,
        redis: lesson_02_cache_aside::redis_manager(redis_url, settings.redis_timeout)?,
        breaker: Arc::new(Breaker::new(settings.breaker)),
        inflight: InFlight::new(settings.max_background_loads),
        settings,
        metrics: Metrics::new()?,
    })))
}

/// The service.
pub fn router(state: AppState) -> Router {
    let routes = Router::new()
        .route("/users/{id}", get(get_user))
        .route("/metrics", get(metrics::render))
        .route(
            "/healthz",
            get(|| async { axum::Json(serde_json::json!({ "status": "ok" })) }),
        )
        .with_state(state);
    lab::http::finish(routes)
}
