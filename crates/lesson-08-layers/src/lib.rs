//! # Lesson 8: cache layers, invalidation and consistency
//!
//! Three layers answer `GET /users/{id}`: **L1**, a bounded cache inside
//! the process (moka); **L2**, Redis, shared by every instance; and
//! PostgreSQL. L1 is the fastest and the hardest to keep right, because
//! each instance has its own: a write on instance A must reach instance
//! B's L1, and on the way it can be late, lost or overtaken. This lesson
//! runs two instances on one Redis and one database, and measures how long
//! "eventually consistent" is for each way of telling B:
//!
//! - **TTL only**: nobody tells B; its copy lives until L1's TTL;
//! - **Redis pub/sub**: the writer publishes `id:version` after it wrote;
//! - **PostgreSQL `NOTIFY`**: a trigger announces every commit, from any
//!   writer (lesson 2's PUT, `psql`, a migration), not only this service;
//! - **Redis client tracking**: redis-rs's client-side cache
//!   (RESP3 `CLIENT TRACKING`, *experimental* in redis-rs 1.x), where
//!   Redis itself invalidates.
//!
//! It also closes the two holes lesson 2 left open: the **stale-set race**
//! (a slow reader writes an old value into Redis after a writer deleted
//! it), fixed by a versioned compare-and-set and by leases; and the **lost
//! invalidation** (a write committed, its `DEL` failed or never ran),
//! fixed by an outbox that the database writes in the writer's transaction.
//!
//! ```text
//! just lesson-8                         # the experiments, short (under a minute)
//! just lesson-8 --serve                 # one instance on 127.0.0.1:3000
//! PORT=3002 just lesson-8 --serve       # a second one, same Redis and database
//! curl -s localhost:3000/users/42                     # X-Cache: MISS, then L1
//! curl -s -X PUT localhost:3002/users/42 -H 'content-type: application/json' \
//!      -d '{"name":"Ada","email":"ada@example.com"}'
//! curl -si localhost:3000/users/42                    # the new name, at once
//! ```
//!
//! Knobs (env var or flag, `--help`): `INVALIDATION` (`notify`, the
//! chapter's recommendation; `pubsub`, `tracking`, `ttl`), `FILL`
//! (`versioned`; `lease`, `naive`), `L1_TTL_MS` (5000), `L1_CAPACITY`
//! (10000), `CACHE_TTL_SECS` (60), `REDIS_TIMEOUT_MS` (50),
//! `OUTBOX_EVERY_MS` (500), and lesson 1's `DATABASE_URL`, `REDIS_URL`,
//! `LAB_DB_LATENCY_MS`, `PORT`.
//!
//! # Layout
//!
//! - this file: the settings, the read path through the three layers and
//!   the write path.
//! - [`l1`]: the in-process layer and its version floors.
//! - [`store`]: Redis: reads, the three fills, invalidation, the scripts.
//! - [`db`]: the version column, the trigger and the outbox.
//! - [`listen`]: the subscriptions (pub/sub, `LISTEN`) and the outbox relay.
//! - [`hooks`]: pause points that make the races reproducible in tests.
//! - [`metrics`], [`cli`], [`experiment`]: `/metrics`, the command line,
//!   and what `just lesson-8` and `just report` run.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use lab::http::{ApiError, db_call, json_body, user_id_from_path};
use lesson_02_cache_aside::{UpdateUser, json_response};
use redis::aio::ConnectionManager;
use sqlx::PgPool;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::Instrument;

pub mod cli;
pub mod db;
pub mod experiment;
pub mod hooks;
pub mod l1;
pub mod listen;
pub mod metrics;
pub mod store;

use crate::hooks::Hooks;
use crate::l1::{Entry, L1};
use crate::listen::Tasks;
use crate::metrics::Metrics;
use crate::store::Lease;

/// How a write on one instance reaches the other instances' L1.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Invalidation {
    /// Nobody is told: a copy lives until L1's TTL.
    Ttl,
    /// The writer publishes `id:version` on a Redis channel.
    #[value(name = "pubsub")]
    #[serde(rename = "pubsub")]
    PubSub,
    /// A trigger's `pg_notify` at every commit, from any writer.
    Notify,
    /// Redis's client-side caching: redis-rs keeps L1, Redis invalidates it.
    Tracking,
}

impl Invalidation {
    pub const ALL: [Invalidation; 4] = [
        Invalidation::Ttl,
        Invalidation::PubSub,
        Invalidation::Notify,
        Invalidation::Tracking,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Invalidation::Ttl => "ttl",
            Invalidation::PubSub => "pubsub",
            Invalidation::Notify => "notify",
            Invalidation::Tracking => "tracking",
        }
    }
}

/// What a reader may write into Redis after a miss (see [`store`]).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Fill {
    /// Lesson 2's: whatever it read. A writer deletes. Has the race.
    Naive,
    /// Only if not older than what Redis holds. A writer writes its
    /// version through.
    Versioned,
    /// Only while holding the lease taken on the miss. A writer deletes
    /// the entry and the lease.
    Lease,
}

impl Fill {
    pub const ALL: [Fill; 3] = [Fill::Naive, Fill::Versioned, Fill::Lease];

    pub fn name(self) -> &'static str {
        match self {
            Fill::Naive => "naive",
            Fill::Versioned => "versioned",
            Fill::Lease => "lease",
        }
    }
}

// ANCHOR: settings
/// The lesson's knobs.
#[derive(Clone, Debug)]
pub struct Settings {
    pub invalidation: Invalidation,
    pub fill: Fill,
    /// How long a Redis entry lives: lesson 2's 60 s. With invalidation
    /// that works, the TTL is only the bound on what a bug costs.
    pub ttl: Duration,
    /// How long an L1 entry lives: 5 s. The bound on staleness when every
    /// message is lost (and the whole story with `Invalidation::Ttl`), so
    /// it is short: an L1 hit saves a Redis round trip of tens of µs,
    /// which is worth having for seconds, not worth serving old data for
    /// minutes.
    pub l1_ttl: Duration,
    /// Most entries L1 holds: 10,000 users at ~100 bytes is ~1 MB per
    /// instance. It bounds memory, not correctness.
    pub l1_capacity: u64,
    pub redis_timeout: Duration,
    /// Key and channel prefix, so tests on a shared Redis never collide.
    pub key_prefix: String,
    /// The schema of `users` (its `NOTIFY` channel is named after it).
    pub schema: String,
    pub latency: Duration,
    pub db_timeout: Duration,
    /// Whether this instance runs the outbox relay (the experiments turn it
    /// off to show what a lost invalidation costs without it).
    pub relay: bool,
    /// How often the relay looks at the outbox: 500 ms, the bound on how
    /// long Redis serves an old value once it is reachable again.
    pub outbox_every: Duration,
    /// How long a change is left to its own writer before the relay takes
    /// it: 1 s, far more than a healthy writer needs (a Redis round trip),
    /// so the relay almost never repeats a writer's work.
    pub outbox_grace: Duration,
}
// ANCHOR_END: settings

impl Settings {
    /// How long a version floor is kept: L1's TTL, plus the longest a read
    /// can take (`db_timeout`), plus the longest Redis may hold an old
    /// value after a write when the writer could not update it (until the
    /// relay's grace and one period have passed). See [`L1::new`].
    pub fn floor_ttl(&self) -> Duration {
        self.l1_ttl + self.db_timeout + self.outbox_grace + self.outbox_every
    }

    /// The defaults, no simulated latency, a 200 ms Redis timeout (a
    /// loaded CI machine), under `key_prefix` and `schema`.
    pub fn for_tests(key_prefix: &str, schema: &str) -> Settings {
        Settings {
            invalidation: Invalidation::Notify,
            fill: Fill::Versioned,
            ttl: Duration::from_secs(60),
            l1_ttl: Duration::from_secs(60),
            l1_capacity: 10_000,
            redis_timeout: Duration::from_millis(200),
            key_prefix: key_prefix.to_string(),
            schema: schema.to_string(),
            latency: Duration::ZERO,
            db_timeout: Duration::from_secs(30),
            relay: true,
            outbox_every: Duration::from_millis(100),
            outbox_grace: Duration::from_millis(200),
        }
    }
}

/// Everything a handler needs; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    /// Writes, scripts and leases; reads too, except with tracking.
    pub redis: ConnectionManager,
    /// Reads: with `Invalidation::Tracking`, a RESP3 connection with
    /// redis-rs's client-side cache, which then *is* L1.
    pub reads: ConnectionManager,
    pub l1: Arc<L1>,
    pub settings: Arc<Settings>,
    pub metrics: Metrics,
    pub hooks: Hooks,
    /// One permit per write in flight (lesson 2's bound, for its reasons).
    pub writes: Arc<Semaphore>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// One running instance: its state and its background tasks (the
/// subscription and the relay), which stop when it is dropped.
#[derive(Debug)]
pub struct Instance {
    pub state: AppState,
    _tasks: Tasks,
}

impl Instance {
    /// Prepares the schema (idempotent), connects, and starts the tasks
    /// that `settings` asks for.
    pub async fn start(
        pool: PgPool,
        redis_url: &str,
        settings: Settings,
        hooks: Hooks,
    ) -> anyhow::Result<Instance> {
        db::prepare(&pool).await?;
        let redis = lesson_02_cache_aside::redis_manager(redis_url, settings.redis_timeout)?;
        let reads = match settings.invalidation {
            Invalidation::Tracking => tracking_manager(redis_url, &settings)?,
            _ => redis.clone(),
        };
        let state = AppState {
            writes: Arc::new(Semaphore::new(lesson_02_cache_aside::default_max_writes(
                pool.options().get_max_connections(),
            ))),
            pool,
            redis,
            reads,
            l1: Arc::new(match settings.invalidation {
                Invalidation::Tracking => L1::disabled(),
                _ => L1::new(settings.l1_capacity, settings.l1_ttl, settings.floor_ttl()),
            }),
            settings: Arc::new(settings),
            metrics: Metrics::new()?,
            hooks,
        };
        let mut tasks = Tasks::default();
        match state.settings.invalidation {
            Invalidation::PubSub => {
                tasks.push(tokio::spawn(listen::pubsub(
                    state.clone(),
                    redis_url.into(),
                )));
            }
            Invalidation::Notify => tasks.push(tokio::spawn(listen::notify(state.clone()))),
            Invalidation::Ttl | Invalidation::Tracking => {}
        }
        if state.settings.relay {
            tasks.push(tokio::spawn(listen::relay(state.clone())));
        }
        Ok(Instance {
            state,
            _tasks: tasks,
        })
    }

    pub fn router(&self) -> Router {
        router(self.state.clone())
    }
}

// ANCHOR: tracking
/// A RESP3 connection whose replies redis-rs caches in the process, with
/// `CLIENT TRACKING` on: Redis remembers which keys this connection read
/// and pushes an invalidation when any client changes one. On reconnect,
/// redis-rs moves to a new cache epoch, so nothing cached before the
/// connection was lost is served after it.
fn tracking_manager(redis_url: &str, s: &Settings) -> anyhow::Result<ConnectionManager> {
    let sep = if redis_url.contains('?') { '&' } else { '?' };
    let client = redis::Client::open(format!("{redis_url}{sep}protocol=resp3"))?;
    let size = std::num::NonZeroUsize::new(s.l1_capacity.max(1) as usize)
        .unwrap_or(std::num::NonZeroUsize::MIN);
    let cache = redis::caching::CacheConfig::new()
        .set_size(size)
        .set_default_client_ttl(s.l1_ttl);
    let config = redis::aio::ConnectionManagerConfig::new()
        .set_connection_timeout(Some(s.redis_timeout))
        .set_response_timeout(Some(s.redis_timeout))
        .set_number_of_retries(1)
        .set_cache_config(cache);
    Ok(ConnectionManager::new_lazy_with_config(client, config)?)
}
// ANCHOR_END: tracking

/// The service: lesson 2's API.
pub fn router(state: AppState) -> Router {
    let routes = Router::new()
        .route("/users/{id}", get(get_user).put(put_user))
        .route("/metrics", get(metrics::render))
        .route(
            "/healthz",
            get(|| async { Json(serde_json::json!({ "status": "ok" })) }),
        )
        .with_state(state);
    lab::http::finish(routes)
}

// ANCHOR: get_user
/// `GET /users/{id}`: L1, then Redis, then the database, filling on the
/// way back. `X-Cache` says which layer answered.
pub async fn get_user(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = user_id_from_path(path)?;
    if let Some(entry) = state.l1.get(id) {
        state.metrics.l1_hit();
        return Ok(json_response(entry.json.to_string(), "L1"));
    }
    // Noted before anything is read: if L1 is cleared while this read is
    // out (a subscription was lost), what it brings back is not cached.
    let epoch = state.l1.epoch();
    if let Some(entry) = store::read(&state, &state.reads, id).await {
        // Older than an invalidation announced: Redis has not been told
        // yet (a NOTIFY arrives at commit, before the writer's Redis
        // call). The database has the truth.
        if state.l1.is_current(id, entry.version) {
            state.metrics.l2_hit();
            let entry = Arc::new(entry);
            state.l1.insert(id, entry.clone(), epoch);
            return Ok(json_response(entry.json.to_string(), "L2"));
        }
        state.metrics.l2_too_old();
    }
    let lease = match state.settings.fill {
        Fill::Lease => store::take_lease(&state, id).await,
        _ => Lease::None,
    };
    state.metrics.db_query();
    let loaded = db::fetch(&state.pool, id, state.settings.latency);
    let found = match db_call(state.settings.db_timeout, loaded).await {
        Ok(Some(found)) => found,
        // Nothing to fill: give the lease back at once.
        Ok(None) => {
            store::release(&state, id, &lease).await;
            return Err(ApiError::NotFound(format!("user {id} not found")));
        }
        Err(e) => {
            store::release(&state, id, &lease).await;
            return Err(e);
        }
    };
    let json = serde_json::to_string(&found.user).map_err(anyhow::Error::from)?;
    let entry = Arc::new(Entry {
        version: found.version,
        json: json.into(),
    });
    // The race's window: a write that commits while a reader is here.
    hooks::hold(&state.hooks.before_fill).await;
    let filled = store::fill(&state, id, &entry, &lease).await;
    // A fill Redis refused is proof that this read is already old (a newer
    // version is there, or a write took the lease): answer with it, it was
    // true a moment ago, but keep it out of L1 too. A fill that failed
    // (Redis down) proves nothing; the floors guard that insert.
    if filled != store::Filled::Refused {
        state.l1.insert(id, entry.clone(), epoch);
    }
    state.metrics.miss();
    Ok(json_response(entry.json.to_string(), "MISS"))
}
// ANCHOR_END: get_user

// ANCHOR: put_user
/// `PUT /users/{id}`: the UPDATE (the trigger bumps the version and writes
/// the outbox row in the same transaction), then the invalidation, in a
/// task of its own so that a client that hangs up cannot stop it half way
/// (lesson 2 says why). The answer says whether every cache has heard:
/// `X-Invalidation: done`, or `queued` when Redis could not be told and
/// the outbox relay will (within `OUTBOX_EVERY_MS` of Redis answering).
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
        return Err(ApiError::Unavailable(
            "too many writes in flight, retry: the update was not applied".into(),
        ));
    };
    let write = tokio::spawn(write(state.clone(), id, update, permit).in_current_span());
    // The task's longest path: the UPDATE and its verdict, then two Redis
    // calls and the outbox row's delete, each under its own timeout.
    let s = &state.settings;
    let patience = s.db_timeout + VERDICT_GRACE + s.redis_timeout * 2 + OUTBOX_DONE_TIMEOUT;
    match tokio::time::timeout(patience, write).await {
        Ok(Ok(Ok((user, heard)))) => {
            let mut resp = Json(user).into_response();
            let value = if heard { "done" } else { "queued" };
            resp.headers_mut()
                .insert("x-invalidation", HeaderValue::from_static(value));
            Ok(resp)
        }
        Ok(Ok(Err(e))) => Err(e),
        Ok(Err(join_error)) => Err(ApiError::Internal(join_error.into())),
        Err(_) => Err(ApiError::Unavailable(format!(
            "the update of user {id} was not confirmed within {patience:?}: it may still be \
             applied; read the user back before retrying"
        ))),
    }
}

/// How much longer than `db_timeout` a write waits for the database's own
/// verdict, which arrives a round trip after its `statement_timeout` fires
/// (lesson 2's `VERDICT_GRACE`).
const VERDICT_GRACE: Duration = Duration::from_secs(1);

/// The longest the write's task waits to delete its outbox row. Best
/// effort: a row left behind costs the relay one more invalidation.
const OUTBOX_DONE_TIMEOUT: Duration = Duration::from_secs(2);

/// The write's task. Once the COMMIT is through, the change is recorded in
/// the outbox whatever happens next: this task dying, Redis failing, the
/// process being killed. What this task adds is speed: it invalidates at
/// once, and clears the outbox row only when Redis has heard.
async fn write(
    state: AppState,
    id: i64,
    update: UpdateUser,
    _permit: OwnedSemaphorePermit,
) -> Result<(lab::users::User, bool), ApiError> {
    state.metrics.db_query();
    let limit = state.settings.db_timeout;
    let name = update.name.trim();
    let email = update.email.trim();
    let update = db::update(&state.pool, id, name, email, limit);
    let saved = match tokio::time::timeout(limit + VERDICT_GRACE, update).await {
        Ok(Ok(Some(saved))) => saved,
        Ok(Ok(None)) => return Err(ApiError::NotFound(format!("user {id} not found"))),
        Ok(Err(e)) => return Err(write_failed(id, limit, e)),
        Err(_) => {
            return Err(ApiError::Unavailable(format!(
                "the database did not answer the update of user {id}: it may still be \
                 applied; read the user back before retrying"
            )));
        }
    };
    hooks::hold(&state.hooks.after_commit).await;
    let json = serde_json::to_string(&saved.user).map_err(anyhow::Error::from)?;
    let entry = Entry {
        version: saved.version,
        json: json.into(),
    };
    // Read-your-writes on this instance: its own L1 forgets at once, before
    // any message could arrive. (With tracking, L1 is redis-rs's, which
    // only Redis's push clears: no such promise there.)
    state.l1.invalidate(id, saved.version);
    let heard = store::invalidate(&state, id, &entry).await;
    if heard {
        let done = db::outbox_done(&state.pool, id, saved.version);
        match tokio::time::timeout(OUTBOX_DONE_TIMEOUT, done).await {
            Ok(Ok(())) => {}
            // Harmless: the relay will invalidate once more.
            Ok(Err(e)) => tracing::debug!("{e:#}"),
            Err(_) => tracing::debug!("deleting the outbox row of user {id} timed out"),
        }
    } else {
        state.metrics.queued();
    }
    Ok((saved.user, heard))
}

/// What a failed UPDATE tells the client, as lesson 2 says it: "not
/// applied" when the database says so, "may be applied" when it cannot.
fn write_failed(id: i64, limit: Duration, e: sqlx::Error) -> ApiError {
    match e {
        // No pool connection came free in time: nothing was sent.
        sqlx::Error::PoolTimedOut => ApiError::Unavailable(format!(
            "the update of user {id} was not applied: no database connection came free \
             within {limit:?}; retry later"
        )),
        // SQLSTATE 57014: the statement timeout fired, and rolled it back.
        sqlx::Error::Database(ref db) if db.code().as_deref() == Some("57014") => {
            ApiError::Unavailable(format!(
                "the update of user {id} was not applied: the database gave up after \
                 {limit:?}; retry later"
            ))
        }
        e => {
            let e = anyhow::Error::from(e).context(format!("Failed to update user {id}"));
            if lab::http::unreachable(&e) {
                tracing::warn!("{e:#}");
                ApiError::Unavailable(format!(
                    "the database could not be reached: the update of user {id} may not have \
                     been applied; read the user back before retrying"
                ))
            } else {
                ApiError::Internal(e)
            }
        }
    }
}
// ANCHOR_END: put_user
