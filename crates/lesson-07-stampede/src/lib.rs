//! # Lesson 7: stampede protection
//!
//! When a hot key expires under load, every request that arrives before
//! the refill misses, and each one queries the database for the same row:
//! a **stampede** (or thundering herd, or dog-pile). The cache lets the
//! most traffic through at the moment the value is most wanted. This
//! lesson counts the herd and compares the cures, on one `GET /users/{id}`
//! over Redis and PostgreSQL, each behind the `STRATEGY` knob:
//!
//! - **naive**: lesson 2's cache-aside. Every concurrent miss queries.
//! - **single-flight**: one load per key per process; the other requests
//!   await its result ([`flight`]).
//! - **xfetch**: probabilistic early recomputation: a read shortly before
//!   the expiry may refresh the entry, so a hot key rarely expires at all
//!   ([`xfetch`]).
//! - **lease**: one load per key across every instance: the reader that
//!   gets a Redis lease fills, the others wait for its fill ([`store`]).
//!
//! Two knobs apply to every strategy: **TTL jitter** (`TTL_JITTER`), so
//! that keys written together do not expire together, and **negative
//! caching** (`NEGATIVE_TTL_SECS`), so that ids that do not exist do not
//! reach the database on every request.
//!
//! ```text
//! just lesson-7                          # the experiments, short (under a minute)
//! just lesson-7 --serve                  # serve on 127.0.0.1:3000
//! STRATEGY=lease just lesson-7 --serve
//! curl -si localhost:3000/users/42       # X-Cache: MISS, then HIT
//! curl -s localhost:3000/metrics         # hits, misses, coalesced, early recomputes
//! ```
//!
//! Knobs (env var or flag, `--help`): `STRATEGY` (`single-flight`;
//! `naive`, `xfetch`, `lease`), `CACHE_TTL_SECS` (60), `TTL_JITTER` (0.1),
//! `NEGATIVE_TTL_SECS` (10; 0 turns it off), `XFETCH_BETA` (1.0),
//! `REDIS_TIMEOUT_MS` (50), and lesson 1's `DATABASE_URL`, `REDIS_URL`,
//! `LAB_DB_LATENCY_MS`, `PORT`.
//!
//! # Layout
//!
//! - this file: the settings and the read path, per strategy.
//! - [`flight`]: the single-flight map; [`xfetch`]: the early-recompute
//!   decision; [`entry`]: what an entry holds, and TTL jitter.
//! - [`store`]: Redis: entries, the lease scripts; [`db`]: the counted
//!   query.
//! - [`metrics`], [`cli`], [`experiment`]: `/metrics`, the command line,
//!   and what `just lesson-7` and `just report` run.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use lab::http::{ApiError, db_call, user_id_from_path};
use lab::log::Throttle;
use lesson_02_cache_aside::json_response;
use redis::aio::ConnectionManager;
use sqlx::PgPool;

pub mod cli;
pub mod db;
pub mod entry;
pub mod experiment;
pub mod flight;
pub mod metrics;
pub mod store;
pub mod xfetch;

use crate::db::Queries;
use crate::entry::{Entry, jittered_ttl, now_ms};
use crate::flight::{Failed, Role, SingleFlight};
use crate::metrics::Metrics;
use crate::store::Found;

/// What a request does when the entry it wants is missing (or nearly so).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// Lesson 2's cache-aside: every miss loads.
    Naive,
    /// One load per key in this process; the others await it.
    SingleFlight,
    /// Probabilistic early recomputation, before the expiry.
    #[value(name = "xfetch")]
    #[serde(rename = "xfetch")]
    XFetch,
    /// One load per key across instances, by a lease in Redis.
    Lease,
}

impl Strategy {
    pub const ALL: [Strategy; 4] = [
        Strategy::Naive,
        Strategy::SingleFlight,
        Strategy::XFetch,
        Strategy::Lease,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Strategy::Naive => "naive",
            Strategy::SingleFlight => "single-flight",
            Strategy::XFetch => "xfetch",
            Strategy::Lease => "lease",
        }
    }
}

// ANCHOR: settings
/// The lesson's knobs.
#[derive(Clone, Debug)]
pub struct Settings {
    pub strategy: Strategy,
    /// How long an entry lives: lesson 2's 60 s, the bound on how old an
    /// answer can be.
    pub ttl: Duration,
    /// Up to this share of the TTL is cut off at random, per entry: 0.1
    /// spreads a batch written together over the last 10% of its TTL (6 s
    /// of 60), at the cost of entries living 5% less on average.
    pub jitter: f64,
    /// How long "not found" is cached; zero turns negative caching off. 10
    /// s: a user created meanwhile is a 404 for at most that long, and a
    /// scraper walking missing ids costs one query per id per 10 s.
    pub negative_ttl: Duration,
    /// XFetch's β: 1.0, the paper's optimum for one key; above 1
    /// recomputes earlier.
    pub beta: f64,
    /// How long a lease lives: the longest a load may take (`db_timeout`)
    /// and two Redis calls, so a reader that dies holding one blocks fills
    /// no longer than that.
    pub lease_ttl: Duration,
    /// How long a lease's waiters wait for its fill before loading
    /// themselves: the same, by which the holder has filled, marked, or
    /// died and let the lease expire.
    pub lease_wait: Duration,
    /// How often they look at first: 5 ms, a tenth of a typical hot query,
    /// one cheap Redis call each time; backing off to 4× that.
    pub lease_poll: Duration,
    pub redis_timeout: Duration,
    /// Key prefix, so tests on a shared Redis never collide.
    pub key_prefix: String,
    pub latency: Duration,
    pub db_timeout: Duration,
}
// ANCHOR_END: settings

impl Settings {
    /// The tests' settings for `strategy`: the defaults but no jitter (the
    /// tests compare TTLs), no simulated latency, a 200 ms Redis timeout (a
    /// loaded CI machine), 30 s leases, keys under `key_prefix`.
    pub fn for_tests(strategy: Strategy, key_prefix: &str) -> Settings {
        Settings {
            strategy,
            ttl: Duration::from_secs(60),
            jitter: 0.0,
            negative_ttl: Duration::from_secs(10),
            beta: 1.0,
            lease_ttl: Duration::from_secs(30),
            lease_wait: Duration::from_secs(30),
            lease_poll: Duration::from_millis(5),
            redis_timeout: Duration::from_millis(200),
            key_prefix: key_prefix.to_string(),
            latency: Duration::ZERO,
            db_timeout: Duration::from_secs(30),
        }
    }
}

/// Everything a handler needs; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub redis: ConnectionManager,
    pub settings: Arc<Settings>,
    pub metrics: Metrics,
    /// The loads sent to the database (shared between instances by the
    /// experiments, to count a fleet's overlaps).
    pub queries: Arc<Queries>,
    /// Loads in flight, with how the leader found its entry (a re-check
    /// may find another load's fill: then it is a hit, not a miss).
    pub flight: Arc<SingleFlight<i64, (Entry, Source)>>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// A state over `pool` and Redis at `redis_url` (connected lazily).
    pub fn new(
        pool: PgPool,
        redis_url: &str,
        settings: Settings,
        queries: Arc<Queries>,
    ) -> anyhow::Result<AppState> {
        Ok(AppState {
            redis: lesson_02_cache_aside::redis_manager(redis_url, settings.redis_timeout)?,
            pool,
            settings: Arc::new(settings),
            metrics: Metrics::new()?,
            queries,
            flight: Arc::new(SingleFlight::new()),
        })
    }
}

/// The service: lesson 2's `GET /users/{id}`, and `/metrics`.
pub fn router(state: AppState) -> Router {
    let routes = Router::new()
        .route("/users/{id}", get(get_user))
        .route("/metrics", get(metrics::render))
        .with_state(state);
    lab::http::finish(routes)
}

/// How a read was answered: its `X-Cache`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// A fresh entry in Redis.
    Hit,
    /// This request loaded from the database.
    Miss,
    /// Another request's load answered it (single-flight, lease).
    Wait,
    /// XFetch: this read recomputed a fresh entry early.
    Early,
}

impl Source {
    pub fn header(self) -> &'static str {
        match self {
            Source::Hit => "HIT",
            Source::Miss => "MISS",
            Source::Wait => "WAIT",
            Source::Early => "EARLY",
        }
    }
}

/// `GET /users/{id}`: 200 with the user, 404 (also from a negative
/// entry), 400 for a malformed id; `X-Cache` says how it was answered.
pub async fn get_user(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = user_id_from_path(path)?;
    let (entry, source) = read(&state, id).await?;
    let cache = source.header();
    match entry.user {
        Some(user) => {
            let json = serde_json::to_string(&user).map_err(anyhow::Error::from)?;
            Ok(json_response(json, cache))
        }
        None => {
            if source == Source::Hit {
                state.metrics.negative_hit();
            }
            let mut resp = ApiError::NotFound(format!("user {id} not found")).into_response();
            resp.headers_mut()
                .insert("x-cache", HeaderValue::from_static(cache));
            Ok(resp)
        }
    }
}

// ANCHOR: read
/// The read path: the entry for `id`, and how it was found.
#[tracing::instrument(skip(state), fields(strategy = state.settings.strategy.name()))]
pub async fn read(state: &AppState, id: i64) -> Result<(Entry, Source), ApiError> {
    let s = &state.settings;
    if s.strategy == Strategy::Lease {
        return read_with_lease(state, id).await;
    }
    if let Some(entry) = store::get(state, id).await {
        let delta = Duration::from_millis(entry.delta_ms);
        let early = s.strategy == Strategy::XFetch
            && xfetch::should_recompute(now_ms(), entry.expiry_ms, delta, s.beta, fastrand::f64());
        if !early {
            state.metrics.hit();
            return Ok((entry, Source::Hit));
        }
        // This read drew the short straw: it recomputes now, while every
        // other read keeps getting the cached value, and it pays Δ itself.
        state.metrics.early();
        return match load_and_fill(state, id).await {
            Ok(fresh) => Ok((fresh, Source::Early)),
            // The entry in hand is still valid: a failed early refresh
            // must not turn it into an error page.
            Err(e) => {
                EARLY_FAILED.warn(format_args!("an early refresh of user {id} failed: {e}"));
                Ok((entry, Source::Hit))
            }
        };
    }
    state.metrics.miss();
    if s.strategy != Strategy::SingleFlight {
        return Ok((load_and_fill(state, id).await?, Source::Miss));
    }
    let leader = state.clone();
    let load = async move {
        // Checked again by the one load: a request that missed just before
        // another load's fill, and arrived after that load ended, finds
        // the fill here instead of querying again.
        if let Some(entry) = store::get(&leader, id).await {
            return Ok((entry, Source::Hit));
        }
        match load_and_fill(&leader, id).await {
            Ok(entry) => Ok((entry, Source::Miss)),
            Err(e) => Err(failed(e)),
        }
    };
    match state.flight.run(id, load).await {
        (Ok(found), Role::Leader) => Ok(found),
        (Ok((entry, _)), Role::Waiter) => {
            state.metrics.coalesced();
            Ok((entry, Source::Wait))
        }
        // Every waiter gets the load's error at once; none retries it.
        (Err(e), _) if &*e.0 == flight::INTERNAL => Err(ApiError::Internal(anyhow::anyhow!(
            "a shared load of user {id} failed (its cause is logged above)"
        ))),
        (Err(e), _) => Err(ApiError::Unavailable(e.to_string())),
    }
}
// ANCHOR_END: read

/// Logs a failed early refresh once per period: a stopped database fails
/// every one of them the same way.
static EARLY_FAILED: Throttle = Throttle::new(Duration::from_secs(5));

/// A load's error, as every request that waited for it will see it: a
/// 503's message, or [`flight::INTERNAL`] (its cause logged here, once).
fn failed(e: ApiError) -> Failed {
    match e {
        ApiError::Unavailable(why) => Failed(why.into()),
        ApiError::Internal(cause) => {
            tracing::error!("loading failed: {cause:#}");
            Failed(flight::INTERNAL.into())
        }
        other => Failed(other.to_string().into()),
    }
}

/// Loads `id` from the database and fills Redis: cache-aside's miss.
async fn load_and_fill(state: &AppState, id: i64) -> Result<Entry, ApiError> {
    let (entry, ttl) = load(state, id).await?;
    if let Some(ttl) = ttl {
        store::put(state, id, &entry, ttl).await;
    }
    Ok(entry)
}

/// One counted query, and the entry to cache with its TTL (`None`: not
/// to be cached, a "not found" with negative caching off).
async fn load(state: &AppState, id: i64) -> Result<(Entry, Option<Duration>), ApiError> {
    let s = &state.settings;
    state.metrics.db_query();
    let query = db::load(&state.pool, &state.queries, id, s.latency);
    let (user, took) = db_call(s.db_timeout, query).await?;
    let ttl = match user {
        Some(_) => Some(jittered_ttl(s.ttl, s.jitter, fastrand::f64())),
        None if s.negative_ttl.is_zero() => None,
        None => Some(jittered_ttl(s.negative_ttl, s.jitter, fastrand::f64())),
    };
    let entry = Entry {
        user,
        delta_ms: took.as_millis() as u64,
        expiry_ms: now_ms() + ttl.unwrap_or_default().as_millis() as u64,
    };
    Ok((entry, ttl))
}

// ANCHOR: lease
/// The lease strategy: the entry; or the lease, and then this reader loads
/// and fills; or neither, and it waits for the holder's fill, asking again
/// every few ms, for at most `lease_wait`.
async fn read_with_lease(state: &AppState, id: i64) -> Result<(Entry, Source), ApiError> {
    let s = &state.settings;
    let token = store::new_token();
    let deadline = Instant::now() + s.lease_wait;
    let mut poll = s.lease_poll;
    let mut waited = false;
    loop {
        let found = store::read_or_lease(state, id, &token).await;
        if !waited && !matches!(found, Some(Found::Entry(_))) {
            state.metrics.miss();
        }
        match found {
            Some(Found::Entry(entry)) if waited => {
                state.metrics.coalesced();
                return Ok((entry, Source::Wait));
            }
            Some(Found::Entry(entry)) => {
                state.metrics.hit();
                return Ok((entry, Source::Hit));
            }
            Some(Found::Lease) => {
                // The holder's work runs in a task of its own: were this
                // request cancelled (its client hung up), the lease would
                // stay taken, unfilled, and every waiter would wait out
                // `lease_wait` and then query at once.
                let holder = tokio::spawn(hold_lease(state.clone(), id, token));
                return match holder.await {
                    Ok(result) => result.map(|entry| (entry, Source::Miss)),
                    Err(e) => Err(ApiError::Internal(anyhow::anyhow!(
                        "the lease holder's task for user {id} failed: {e}"
                    ))),
                };
            }
            Some(Found::Marked(store::Mark::Failed)) => {
                return Err(ApiError::Unavailable(format!(
                    "loading user {id} failed a moment ago; retry in {:?}",
                    store::Mark::Failed.lasts()
                )));
            }
            Some(Found::Marked(store::Mark::Absent)) => {
                state.metrics.coalesced();
                let entry = Entry {
                    user: None,
                    delta_ms: 0,
                    expiry_ms: now_ms(),
                };
                return Ok((entry, Source::Wait));
            }
            Some(Found::Busy) if Instant::now() < deadline => {
                waited = true;
                // Backing off to 4× the first period: a thousand waiters
                // each asking every 5 ms would be 200,000 calls a second,
                // enough to slow Redis for everyone; at 20 ms a waiter
                // still sees the fill within 20 ms of it.
                let pause = poll.mul_f64(0.5 + fastrand::f64() / 2.0);
                tokio::time::sleep(pause).await;
                poll = (poll * 2).min(s.lease_poll * 4);
            }
            // Not an entry: load, and overwrite it with a plain SET.
            Some(Found::Unreadable) => {
                return Ok((load_and_fill(state, id).await?, Source::Miss));
            }
            // Waited for as long as a load may take, or Redis is failing:
            // load without filling. Serving the user beats an error page.
            found => {
                if found.is_some() {
                    state.metrics.lease_timeout();
                }
                return Ok((load(state, id).await?.0, Source::Miss));
            }
        }
    }
}

/// The lease holder's load: fills with the lease, or marks it with what
/// the load found instead, so that the waiters answer at once.
async fn hold_lease(state: AppState, id: i64, token: String) -> Result<Entry, ApiError> {
    let (entry, ttl) = match load(&state, id).await {
        Ok(loaded) => loaded,
        Err(e) => {
            store::mark(&state, id, &token, store::Mark::Failed).await;
            return Err(e);
        }
    };
    match ttl {
        Some(ttl) => {
            store::fill_with_lease(&state, id, &entry, ttl, &token).await;
        }
        None => store::mark(&state, id, &token, store::Mark::Absent).await,
    }
    Ok(entry)
}
// ANCHOR_END: lease

/// One running instance of the service.
#[derive(Debug, Clone)]
pub struct Instance {
    pub state: AppState,
}

impl Instance {
    pub fn start(
        pool: PgPool,
        redis_url: &str,
        settings: Settings,
        queries: Arc<Queries>,
    ) -> anyhow::Result<Instance> {
        Ok(Instance {
            state: AppState::new(pool, redis_url, settings, queries)?,
        })
    }

    pub fn router(&self) -> Router {
        router(self.state.clone())
    }
}
