//! # Lesson 9: when one machine is not enough
//!
//! Lesson 2's cache-aside, `GET /users/{id}` and `PUT /users/{id}`, with
//! each of its two servers scaled out:
//!
//! - **Redis becomes a Redis Cluster**: six nodes, three masters each
//!   owning a third of the 16,384 hash slots, each with a replica. The
//!   code change is one constructor ([`cache`]); what changes is how the
//!   cache fails. A dead master takes its third of the keys with it until
//!   its replica is promoted (seconds, `cluster-node-timeout` and an
//!   election), and an untuned client waits through that, while a bounded
//!   one answers those keys from the database, and one that reads from
//!   replicas still answers them from the cache. Keys move during a
//!   reshard (the client follows `MOVED` and `ASK`), and a multi-key
//!   command works only within one slot (hash tags, [`cache::user_key`]).
//! - **PostgreSQL gets a read replica**: cache fills can read it, but it
//!   lags, and a fill that reads the old row just after a write caches the
//!   old row for a whole TTL. [`replica`] shows that and three fixes.
//!
//! ```text
//! just lesson-9                        # the experiments, short
//! just serve-9                         # serve on 127.0.0.1:3000, over a private
//!                                      # 6-node cluster and a primary + replica
//! curl -si localhost:3000/users/42     # X-Cache: MISS (X-Source: replica), then HIT
//! curl -si -X PUT -H 'content-type: application/json' \
//!      -d '{"name":"Ada"}' localhost:3000/users/42
//! curl -s localhost:3000/metrics
//! ```
//!
//! Knobs (env var or flag, `--help`): `CLIENT_MODE` (`bounded`;
//! `defaults`, `replica-reads`), `FILL_FROM` (`lsn`; `replica`, `primary`,
//! `read-your-writes`), `READ_YOUR_WRITES_MS` (2000, that window),
//! `CACHE_TTL_SECS` (60), `REDIS_TIMEOUT_MS` (500),
//! and lesson 1's `LAB_DB_LATENCY_MS`, `DB_TIMEOUT_MS`, `PORT`.
//!
//! The book's chapter "Lesson 9: scaling out" walks through this crate.
//!
//! # Layout
//!
//! - this file: the settings, the state, the handlers and the read path
//!   ([`read_user`]): lesson 2's pattern, unchanged in shape.
//! - [`cache`]: the three cache calls over one Redis or a cluster, per
//!   [`cache::ClientMode`]; hash-tagged keys.
//! - [`replica`]: the primary, the replica and the fill policy.
//! - [`metrics`], [`cli`], [`experiment`]: `/metrics`, the command line,
//!   and what `just lesson-9` and `just report` run.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use lab::http::{ApiError, json_body, user_id_from_path};
use lab::users::User;
use lesson_02_cache_aside::json_response;
use sqlx::PgPool;
use tracing::Instrument;

pub mod cache;
pub mod cli;
pub mod experiment;
pub mod metrics;
pub mod replica;

use crate::cache::{Cache, ClientMode, Lookup, Topology};
use crate::metrics::Metrics;
use crate::replica::{Db, FillFrom, ReplicaSettings, Source};

/// The service's error: lesson 2's JSON answer (400, 404, 503, 500).
pub type AppError = ApiError;

// ANCHOR: settings
/// The lesson's knobs.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Lesson 2's 60 s: how long a cached user lives.
    pub ttl: Duration,
    /// The deadline of one Redis call (bounded client modes): 500 ms, for
    /// a cluster's extra hop; see [`cache::DEFAULT_TIMEOUT`].
    pub redis_timeout: Duration,
    /// How the Redis client is configured.
    pub client_mode: ClientMode,
    /// Which database a cache fill reads.
    pub fill_from: FillFrom,
    /// `read-your-writes`' window (see [`ReplicaSettings::window`]).
    pub replica_window: Duration,
    /// Key prefix (`l9:<schema>:`), so tests on a shared Redis never collide.
    pub key_prefix: String,
    pub latency: Duration,
    /// The longest a cache fill's database reads may take, together.
    pub db_timeout: Duration,
}
// ANCHOR_END: settings

impl Settings {
    /// The tests' settings: the defaults (bounded client, LSN fills, 60 s
    /// TTL, 500 ms Redis deadline), no simulated latency, a 5 s database
    /// bound, keys under `key_prefix`.
    pub fn for_tests(key_prefix: &str) -> Settings {
        Settings {
            ttl: Duration::from_secs(60),
            redis_timeout: cache::DEFAULT_TIMEOUT,
            client_mode: ClientMode::Bounded,
            fill_from: FillFrom::Lsn,
            replica_window: ReplicaSettings::default().window,
            key_prefix: key_prefix.to_string(),
            latency: Duration::ZERO,
            db_timeout: Duration::from_secs(5),
        }
    }

    /// User `id`'s key: `{prefix}{user:ID}`, hash-tagged.
    pub fn key(&self, id: i64) -> String {
        cache::user_key(&self.key_prefix, id)
    }

    /// What [`Db`] needs of these settings.
    pub fn replica_settings(&self) -> ReplicaSettings {
        ReplicaSettings {
            window: self.replica_window,
            timeout: self.db_timeout,
            latency: self.latency,
        }
    }
}

/// Everything a handler needs; cheap to clone (handles and `Arc`s).
#[derive(Clone, Debug)]
pub struct AppState {
    pub cache: Cache,
    pub db: Db,
    pub settings: Arc<Settings>,
    pub metrics: Metrics,
}

impl AppState {
    pub fn new(cache: Cache, db: Db, settings: Settings) -> anyhow::Result<AppState> {
        Ok(AppState {
            cache,
            db,
            settings: Arc::new(settings),
            metrics: Metrics::new()?,
        })
    }

    /// Connects to Redis (`topology`, with the settings' client mode) and
    /// builds the database side over `primary` and an optional `replica`.
    pub async fn connect(
        topology: &Topology,
        primary: PgPool,
        replica: Option<PgPool>,
        settings: Settings,
    ) -> anyhow::Result<AppState> {
        let cache =
            Cache::connect_with_timeout(topology, settings.client_mode, settings.redis_timeout)
                .await?;
        let db = Db::new(
            primary,
            replica,
            settings.fill_from,
            settings.replica_settings(),
        );
        AppState::new(cache, db, settings)
    }
}

/// The service: `GET` and `PUT /users/{id}`, `/metrics`, `/healthz`.
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

/// How a read was answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// From Redis.
    Hit,
    /// Redis had no copy: read from this database, then cached.
    Miss(Source),
    /// Redis failed or timed out: read from this database, not cached
    /// (a SET right after a failed GET would most likely fail too, and
    /// double the wait).
    Failed(Source),
}

impl Outcome {
    /// `X-Cache`: a failed lookup is a `MISS` to the client; the metrics
    /// and the log tell the two apart.
    pub fn x_cache(self) -> &'static str {
        match self {
            Outcome::Hit => "HIT",
            Outcome::Miss(_) | Outcome::Failed(_) => "MISS",
        }
    }

    /// `X-Source`: which database answered, on a miss.
    pub fn source(self) -> Option<Source> {
        match self {
            Outcome::Hit => None,
            Outcome::Miss(s) | Outcome::Failed(s) => Some(s),
        }
    }
}

// ANCHOR: get_user
/// `GET /users/{id}`: 200 with the user and `X-Cache` (and `X-Source` on a
/// miss), 404 for an unknown id, 400 JSON for a malformed one.
pub async fn get_user(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, AppError> {
    let id = user_id_from_path(path)?;
    let (user, outcome) = read_user(&state, id).await?;
    let json = serde_json::to_string(&user).map_err(anyhow::Error::from)?;
    let mut resp = json_response(json, outcome.x_cache());
    if let Some(source) = outcome.source() {
        resp.headers_mut()
            .insert("x-source", HeaderValue::from_static(source.name()));
    }
    Ok(resp)
}
// ANCHOR_END: get_user

// ANCHOR: read_user
/// Cache-aside, as in lesson 2: Redis first; on a miss (or a failed
/// lookup) the database, by the fill policy; then the copy into Redis
/// with the TTL. Nothing here knows whether Redis is one server or a
/// cluster: the cache hides it.
#[tracing::instrument(skip(state))]
pub async fn read_user(state: &AppState, id: i64) -> Result<(User, Outcome), AppError> {
    let key = state.settings.key(id);
    let failed = match state.cache.get(&key).await {
        Lookup::Hit(json) => match serde_json::from_str::<User>(&json) {
            Ok(user) => {
                state.metrics.hit();
                return Ok((user, Outcome::Hit));
            }
            // Not ours (another version wrote it): read and overwrite it.
            Err(e) => {
                tracing::warn!("unreadable cache entry {key}: {e}");
                state.metrics.miss();
                false
            }
        },
        Lookup::Miss => {
            state.metrics.miss();
            false
        }
        Lookup::Failed => {
            state.metrics.redis_error();
            true
        }
    };

    let (user, source) = fill(state, id).await?;
    state.metrics.fill(source);
    if failed {
        return Ok((user, Outcome::Failed(source)));
    }
    let json = serde_json::to_string(&user).map_err(anyhow::Error::from)?;
    if !state.cache.set(&key, &json, state.settings.ttl).await {
        state.metrics.redis_error();
    }
    Ok((user, Outcome::Miss(source)))
}
// ANCHOR_END: read_user

/// The fill's read, bounded as a whole by `db_timeout`: it may take more
/// than one query (asking the replica how far it has replayed, then
/// reading it, or the primary after it failed).
async fn fill(state: &AppState, id: i64) -> Result<(User, Source), AppError> {
    let limit = state.settings.db_timeout;
    match tokio::time::timeout(limit, state.db.read_for_fill(id)).await {
        Ok(Ok(Some(found))) => Ok(found),
        Ok(Ok(None)) => Err(ApiError::NotFound(format!("user {id} not found"))),
        Ok(Err(e)) => Err(db_error(e)),
        Err(_) => Err(ApiError::Unavailable(format!(
            "the database did not answer within {limit:?}"
        ))),
    }
}

/// A database failure, for the client: unreachable or timed out is a 503
/// (retry later; the client did nothing wrong), anything else a 500. The
/// cause goes to the log, never to the client.
fn db_error(e: anyhow::Error) -> ApiError {
    let timed_out = e
        .chain()
        .any(|c| c.to_string().starts_with("no answer within"));
    if lab::http::unreachable(&e) || timed_out {
        DB_DOWN.warn(format_args!("{e:#}"));
        ApiError::Unavailable("the database is unavailable".into())
    } else {
        ApiError::Internal(e)
    }
}

/// One line per period: a stopped database fails every request alike.
static DB_DOWN: lab::log::Throttle = lab::log::Throttle::new(Duration::from_secs(5));

/// The body of `PUT /users/{id}`. Unknown fields are an error, not
/// ignored: a typo must not look like a successful update.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateName {
    pub name: String,
}

/// The longest name, in characters, after trimming (lesson 2's limit).
const MAX_NAME_CHARS: usize = 100;

impl UpdateName {
    /// Lesson 2's rule, shortened: no control characters, 1 to 100
    /// characters once trimmed.
    fn validate(&self) -> Result<&str, ApiError> {
        let name = self.name.trim();
        if self.name.contains(char::is_control)
            || name.is_empty()
            || name.chars().count() > MAX_NAME_CHARS
        {
            return Err(ApiError::BadRequest(format!(
                "name must be 1 to {MAX_NAME_CHARS} characters, without control characters"
            )));
        }
        Ok(name)
    }
}

// ANCHOR: put_user
/// `PUT /users/{id}` with `{"name": "..."}`: the UPDATE on the primary,
/// then the DEL of the cached copy (lesson 2: delete, don't overwrite).
/// 200 with the new name, 404 unknown, 400 for a bad body or id.
///
/// The DEL goes to the key's master whatever the client mode: a replica
/// cannot delete. Then the next read misses and fills, and *which
/// database* it fills from is the replica lesson: `FILL_FROM`.
///
/// As in lesson 2, the UPDATE and the DEL run in a task of their own, so
/// a client that hangs up mid-write cannot leave the old copy cached.
pub async fn put_user(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    body: Result<Json<UpdateName>, JsonRejection>,
) -> Result<Response, AppError> {
    let id = user_id_from_path(path)?;
    let body = json_body(body)?;
    let name = body.validate()?.to_string();
    let write = update_then_delete(state.clone(), id, name.clone());
    let write = tokio::spawn(write.in_current_span());
    // The task bounds its UPDATE by `db_timeout`; a little longer here
    // lets its verdict arrive.
    let patience = state.settings.db_timeout + Duration::from_secs(1);
    match tokio::time::timeout(patience, write).await {
        Ok(Ok(Ok(true))) => Ok(Json(serde_json::json!({ "id": id, "name": name })).into_response()),
        Ok(Ok(Ok(false))) => Err(ApiError::NotFound(format!("user {id} not found"))),
        Ok(Ok(Err(e))) => Err(e),
        Ok(Err(join_error)) => Err(ApiError::Internal(join_error.into())),
        Err(_) => Err(ApiError::Unavailable(format!(
            "the database did not confirm the update of user {id} within {patience:?}"
        ))),
    }
}

/// The UPDATE, then the DEL, always both: after a failed UPDATE the DEL
/// costs one miss; after a success it is the invalidation.
async fn update_then_delete(state: AppState, id: i64, name: String) -> Result<bool, AppError> {
    state.metrics.write();
    let updated = state.db.update_name(id, &name).await;
    if !state.cache.del(&state.settings.key(id)).await {
        state.metrics.redis_error();
    }
    updated.map_err(db_error)
}
// ANCHOR_END: put_user
