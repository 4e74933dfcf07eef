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
//!   cache; misses and refreshes go to the database in the background.
//! - No copy and no database: 503 with `Retry-After`, fast.
//!
//! ```text
//! just lesson-3                  # the outage experiment, short version (~1 min)
//! just lesson-3 --serve          # serve on 127.0.0.1:3000
//! curl -i http://127.0.0.1:3000/users/123     # MISS, then HIT; STALE once it is old and the DB fails
//! ```
//!
//! Knobs (env var, or the flag in `--help`): `CACHE_SOFT_TTL_SECS` (60),
//! `CACHE_HARD_TTL_SECS` (86400), `CACHE_MODE` (fallback), `DB_TIMEOUT_MS`,
//! `BREAKER_FAILURES` (5), `BREAKER_OPEN_SECS` (5), `REDIS_TIMEOUT_MS` (50),
//! `LAB_DB_LATENCY_MS`, `REDIS_URL`, `DATABASE_URL`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use lab::http::{ApiError, user_id_from_path};
use lab::users::{User, fetch_user};
use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use sqlx::PgPool;

pub mod breaker;
pub mod demo;
pub mod entry;
pub mod inflight;
pub mod outage;

use crate::breaker::{Breaker, BreakerConfig, Refused};
use crate::entry::{Entry, Freshness};
use crate::inflight::InFlight;

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
}
// ANCHOR_END: settings

impl Settings {
    /// The defaults, with no simulated latency, a 500 ms database timeout,
    /// and a breaker of 3 failures and 1 s: what the tests run with.
    pub fn for_tests(key_prefix: &str, mode: Mode) -> Settings {
        Settings {
            soft_ttl: Duration::from_secs(60),
            hard_ttl: Duration::from_secs(86_400),
            mode,
            breaker: BreakerConfig {
                failures: 3,
                open_for: Duration::from_secs(1),
            },
            redis_timeout: Duration::from_millis(200),
            db_timeout: Duration::from_millis(500),
            latency: Duration::ZERO,
            key_prefix: key_prefix.to_string(),
        }
    }

    /// Not lesson 2's `user:{id}`: the value here is an [`Entry`], and
    /// lesson 2 and 3 may share one Redis.
    pub fn key(&self, id: i64) -> String {
        format!("{}entry:user:{id}", self.key_prefix)
    }
}

/// What the service counts. Plain atomics: the tests and the outage
/// experiment read them directly, and `/metrics` prints them.
#[derive(Debug, Default)]
pub struct Stats {
    pub hits: AtomicU64,
    pub misses: AtomicU64,
    pub stale: AtomicU64,
    /// Calls actually made to the database.
    pub db_attempts: AtomicU64,
    pub db_failures: AtomicU64,
    /// Calls the open breaker did not make.
    pub breaker_refused: AtomicU64,
    pub background_refreshes: AtomicU64,
    pub unavailable: AtomicU64,
    pub redis_errors: AtomicU64,
}

impl Stats {
    fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// Everything a handler needs; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub redis: ConnectionManager,
    pub settings: Arc<Settings>,
    pub breaker: Arc<Breaker>,
    pub inflight: InFlight,
    pub stats: Arc<Stats>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// Builds the state over a pool and a Redis URL.
pub fn state(pool: PgPool, redis_url: &str, settings: Settings) -> anyhow::Result<AppState> {
    Ok(AppState {
        pool,
        redis: lesson_02_cache_aside::redis_manager(redis_url, settings.redis_timeout)?,
        breaker: Arc::new(Breaker::new(settings.breaker)),
        settings: Arc::new(settings),
        inflight: InFlight::default(),
        stats: Arc::new(Stats::default()),
    })
}

/// The service.
pub fn router(state: AppState) -> Router {
    let routes = Router::new()
        .route("/users/{id}", get(get_user))
        .route("/metrics", get(metrics))
        .route(
            "/healthz",
            get(|| async { axum::Json(serde_json::json!({ "status": "ok" })) }),
        )
        .with_state(state);
    lab::http::finish(routes)
}

/// What a request can fail with. A 503 here always says when to retry.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Api(#[from] ApiError),
    /// No usable copy and no database.
    #[error("{message}")]
    Unavailable {
        message: String,
        retry_after: Duration,
    },
}

impl IntoResponse for ServeError {
    fn into_response(self) -> Response {
        match self {
            ServeError::Api(e) => e.into_response(),
            ServeError::Unavailable {
                message,
                retry_after,
            } => {
                // Whole seconds, rounded up: `Retry-After: 0` invites a
                // client to hammer us.
                let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    [(header::RETRY_AFTER, secs.max(1).to_string())],
                    axum::Json(serde_json::json!({ "error": message })),
                )
                    .into_response()
            }
        }
    }
}

/// Why the database could not answer.
#[derive(Debug, thiserror::Error)]
pub enum DbDown {
    #[error("the circuit breaker is open")]
    BreakerOpen(Refused),
    #[error("the database did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the database failed: {0:#}")]
    Failed(anyhow::Error),
}

impl DbDown {
    fn retry_after(&self) -> Duration {
        match self {
            DbDown::BreakerOpen(r) => r.retry_in,
            _ => Duration::from_secs(1),
        }
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
            Stats::bump(&state.stats.hits);
            respond(id, entry, "HIT")
        }
        // Stale, and the request may wait for the database.
        (Mode::Fallback, Some(stale)) => match load(&state, id).await {
            Ok(entry) => {
                Stats::bump(&state.stats.misses);
                respond(id, entry, "MISS")
            }
            Err(why) => {
                tracing::warn!("serving a stale copy of user {id}: {why}");
                Stats::bump(&state.stats.stale);
                respond(id, stale, "STALE")
            }
        },
        // Stale, and the request does not wait: refresh behind its back.
        (Mode::Swr | Mode::CacheFirst, Some(stale)) => {
            refresh_in_background(&state, id);
            Stats::bump(&state.stats.stale);
            respond(id, stale, "STALE")
        }
        // Nothing cached, and cache-first never waits for the database.
        (Mode::CacheFirst, None) => {
            refresh_in_background(&state, id);
            Stats::bump(&state.stats.unavailable);
            Err(ServeError::Unavailable {
                message: format!("user {id} is not cached yet; it is being loaded"),
                retry_after: Duration::from_secs(1),
            })
        }
        // Nothing cached: the database or nothing.
        (Mode::Fallback | Mode::Swr, None) => match load(&state, id).await {
            Ok(entry) => {
                Stats::bump(&state.stats.misses);
                respond(id, entry, "MISS")
            }
            Err(why) => {
                Stats::bump(&state.stats.unavailable);
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
/// is written to the cache with a new timestamp.
#[tracing::instrument(skip(state))]
async fn load(state: &AppState, id: i64) -> Result<Entry<User>, DbDown> {
    let s = &state.settings;
    let permit = state.breaker.acquire().map_err(|refused| {
        Stats::bump(&state.stats.breaker_refused);
        DbDown::BreakerOpen(refused)
    })?;
    Stats::bump(&state.stats.db_attempts);
    let user =
        match tokio::time::timeout(s.db_timeout, fetch_user(&state.pool, id, s.latency)).await {
            Ok(Ok(user)) => {
                permit.success();
                user
            }
            Ok(Err(e)) => {
                permit.failure();
                Stats::bump(&state.stats.db_failures);
                return Err(DbDown::Failed(e));
            }
            Err(_) => {
                permit.failure();
                Stats::bump(&state.stats.db_failures);
                return Err(DbDown::Timeout(s.db_timeout));
            }
        };
    let entry = Entry::new(user, SystemTime::now());
    cache_set(state, id, &entry).await;
    Ok(entry)
}

/// Starts a refresh of `id` unless one is already running.
fn refresh_in_background(state: &AppState, id: i64) {
    let Some(claim) = state.inflight.try_claim(id) else {
        return;
    };
    Stats::bump(&state.stats.background_refreshes);
    let state = state.clone();
    tokio::spawn(async move {
        let _claim = claim; // released when the refresh ends, however it ends
        if let Err(why) = load(&state, id).await {
            tracing::debug!("background refresh of user {id} failed: {why}");
        }
    });
}
// ANCHOR_END: load

/// A cached entry as a response. `Age` is the copy's age in seconds, as
/// HTTP caches send it (RFC 9111 §5.1), so a client can tell how old a
/// STALE answer is.
pub fn respond(id: i64, entry: Entry<User>, cache: &'static str) -> Result<Response, ServeError> {
    let age = entry.age(SystemTime::now()).as_secs();
    let Some(user) = entry.value else {
        return Err(ApiError::NotFound(format!("user {id} not found")).into());
    };
    let mut resp = axum::Json(user).into_response();
    let h = resp.headers_mut();
    h.insert("x-cache", HeaderValue::from_static(cache));
    h.insert(header::AGE, HeaderValue::from(age));
    Ok(resp)
}

// ANCHOR: cache_calls
/// Reads the entry. A Redis failure, or a value that is not an entry, is
/// a miss: logged and counted.
#[tracing::instrument(skip(state))]
async fn cache_get(state: &AppState, id: i64) -> Option<Entry<User>> {
    let mut redis = state.redis.clone();
    let key = state.settings.key(id);
    let got = tokio::time::timeout(
        state.settings.redis_timeout,
        redis.get::<_, Option<String>>(&key),
    )
    .await;
    let json = match got {
        Ok(Ok(json)) => json?,
        Ok(Err(e)) => {
            Stats::bump(&state.stats.redis_errors);
            tracing::warn!("Redis GET failed, going to the database: {e}");
            return None;
        }
        Err(_) => {
            Stats::bump(&state.stats.redis_errors);
            tracing::warn!("Redis GET timed out, going to the database");
            return None;
        }
    };
    serde_json::from_str(&json)
        .inspect_err(|e| tracing::warn!("ignoring a malformed entry at {key}: {e}"))
        .ok()
}

/// Writes the entry. A user kept for the hard TTL; "no such user" only in
/// cache-first mode, which has no other way to answer 404, and only for the
/// soft TTL, so a user created a moment later appears soon. In the other
/// modes a 404 deletes the key, so a deleted user's stale copy is never
/// served again.
#[tracing::instrument(skip(state, entry))]
async fn cache_set(state: &AppState, id: i64, entry: &Entry<User>) {
    let s = &state.settings;
    let mut redis = state.redis.clone();
    let key = s.key(id);
    let ttl = match (&entry.value, s.mode) {
        (Some(_), _) => Some(s.hard_ttl),
        (None, Mode::CacheFirst) => Some(s.soft_ttl),
        (None, _) => None,
    };
    let write = async {
        match ttl {
            Some(ttl) => {
                let json = serde_json::to_string(entry)?;
                redis
                    .set_ex::<_, _, ()>(&key, json, ttl.as_secs().max(1))
                    .await?
            }
            None => redis.del::<_, ()>(&key).await?,
        }
        anyhow::Ok(())
    };
    match tokio::time::timeout(s.redis_timeout, write).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            Stats::bump(&state.stats.redis_errors);
            tracing::warn!("Redis write failed; the next read will miss: {e:#}");
        }
        Err(_) => {
            Stats::bump(&state.stats.redis_errors);
            tracing::warn!("Redis write timed out; the next read will miss");
        }
    }
}
// ANCHOR_END: cache_calls

/// `GET /metrics`: the counters and the breaker, in Prometheus's text format.
async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let st = &state.stats;
    let mut text = String::new();
    for (name, c) in [
        ("cache_hits_total", &st.hits),
        ("cache_misses_total", &st.misses),
        ("cache_stale_total", &st.stale),
        ("db_attempts_total", &st.db_attempts),
        ("db_failures_total", &st.db_failures),
        ("breaker_refused_total", &st.breaker_refused),
        ("background_refreshes_total", &st.background_refreshes),
        ("unavailable_total", &st.unavailable),
        ("redis_errors_total", &st.redis_errors),
    ] {
        text.push_str(&format!(
            "# TYPE {name} counter\n{name} {}\n",
            Stats::get(c)
        ));
    }
    let open = u8::from(state.breaker.status() != breaker::Status::Closed);
    text.push_str(&format!("# TYPE breaker_open gauge\nbreaker_open {open}\n"));
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text)
}

/// The lesson's settings, from flags or env vars.
#[derive(clap::Parser, Clone, Debug)]
#[command(
    name = "lesson-03-stale-fallback",
    about = "Lesson 3: serve stale data when the database is slow or down; the outage experiment."
)]
pub struct Args {
    #[command(flatten)]
    pub common: lab::cli::CommonArgs,
    /// Seconds a copy is fresh (served without asking the database).
    #[arg(long = "soft-ttl-secs", env = "CACHE_SOFT_TTL_SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub soft_ttl_secs: u64,
    /// Seconds a copy is kept for when the database fails (at least the soft TTL).
    #[arg(long = "hard-ttl-secs", env = "CACHE_HARD_TTL_SECS", default_value_t = 86_400, value_parser = clap::value_parser!(u64).range(1..=31_536_000))]
    pub hard_ttl_secs: u64,
    /// What to do with a stale or missing copy.
    #[arg(long, env = "CACHE_MODE", value_enum, default_value_t = Mode::Fallback)]
    pub mode: Mode,
    /// Consecutive database failures that open the circuit breaker.
    #[arg(long = "breaker-failures", env = "BREAKER_FAILURES", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub breaker_failures: u32,
    /// Seconds the breaker stays open before it lets one probe through.
    #[arg(long = "breaker-open-secs", env = "BREAKER_OPEN_SECS", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub breaker_open_secs: u64,
    /// The longest one Redis call may take, in ms.
    #[arg(long = "redis-timeout-ms", env = "REDIS_TIMEOUT_MS", default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub redis_timeout_ms: u64,
    /// Run the book's longer outage experiment instead of the short one.
    #[arg(long)]
    pub long: bool,
    /// Also write the experiment's results as JSON to this file.
    #[arg(long)]
    pub json: Option<std::path::PathBuf>,
}

impl Args {
    pub fn settings(&self) -> anyhow::Result<Settings> {
        if self.hard_ttl_secs < self.soft_ttl_secs {
            anyhow::bail!(
                "CACHE_HARD_TTL_SECS ({}) is shorter than CACHE_SOFT_TTL_SECS ({}): a copy would vanish before it could ever be served stale. Make the hard TTL at least the soft one.",
                self.hard_ttl_secs,
                self.soft_ttl_secs
            );
        }
        Ok(Settings {
            soft_ttl: Duration::from_secs(self.soft_ttl_secs),
            hard_ttl: Duration::from_secs(self.hard_ttl_secs),
            mode: self.mode,
            breaker: BreakerConfig {
                failures: self.breaker_failures,
                open_for: Duration::from_secs(self.breaker_open_secs),
            },
            redis_timeout: Duration::from_millis(self.redis_timeout_ms),
            db_timeout: self.common.db_timeout(),
            latency: self.common.latency(),
            key_prefix: String::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn defaults_match_the_chapter() {
        let a = Args::try_parse_from(["x"]).expect("defaults");
        let s = a.settings().expect("valid");
        assert_eq!(s.soft_ttl, Duration::from_secs(60));
        assert_eq!(s.hard_ttl, Duration::from_secs(86_400));
        assert_eq!(s.mode, Mode::Fallback);
        assert_eq!(s.breaker.failures, 5);
        assert_eq!(s.breaker.open_for, Duration::from_secs(5));
        assert_eq!(s.key(7), "entry:user:7");
    }

    #[test]
    fn bad_knobs_are_named() {
        assert!(Args::try_parse_from(["x", "--mode", "sometimes"]).is_err());
        assert!(Args::try_parse_from(["x", "--soft-ttl-secs", "0"]).is_err());
        let a = Args::try_parse_from(["x", "--soft-ttl-secs", "600", "--hard-ttl-secs", "60"])
            .expect("parses");
        let e = a.settings().expect_err("hard < soft").to_string();
        assert!(e.contains("CACHE_HARD_TTL_SECS"), "{e}");
    }

    #[test]
    fn retry_after_is_whole_seconds_rounded_up() {
        let r = ServeError::Unavailable {
            message: "x".into(),
            retry_after: Duration::from_millis(1200),
        }
        .into_response();
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(r.headers()[header::RETRY_AFTER], "2");
    }
}
